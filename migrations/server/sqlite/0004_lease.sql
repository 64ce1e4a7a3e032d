-- The device lease: a random secret per device that the device needs, with the worker's
-- passphrase, to unlock its local store. The service hands it out with an expiry at enrollment,
-- at every token refresh and (after the password) when an expired lease is renewed; a revoked
-- device gets it never again, so its store becomes unreadable when its lease runs out.
ALTER TABLE devices ADD COLUMN lease_secret TEXT;

-- The refresh token issued in exchange for this one (its hash). A refresh whose answer was lost
-- on the network may be retried with the same token for a short while, as long as that
-- successor has not been used; the successor is then spent in its place.
ALTER TABLE refresh_tokens ADD COLUMN replaced_by TEXT;
