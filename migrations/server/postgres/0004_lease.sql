-- The device lease: a random secret per device that the device needs, with the worker's
-- passphrase, to unlock its local store. The service hands it out with an expiry at enrollment,
-- at every token refresh and (after the password) when an expired lease is renewed; a revoked
-- device gets it never again, so its store becomes unreadable when its lease runs out.
ALTER TABLE devices ADD COLUMN lease_secret TEXT;
