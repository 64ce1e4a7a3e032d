-- The device's connection to the central service, inside the encrypted database: the
-- service's address and the device's refresh token (single use; replaced at every refresh).
-- No row: the worker's data is local only.
CREATE TABLE sync_account (
    singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
    server_url    TEXT NOT NULL,
    username      TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    connected_at  TEXT NOT NULL,
    last_sync_at  TEXT
);

-- How much of a case bucket the worker saw when it was pulled (the service's `views`): when
-- that changes (no longer a participant, …), the bucket is deleted and pulled again, so nothing
-- cut for the old view stays on the device.
ALTER TABLE sync_buckets ADD COLUMN view TEXT;
