-- When a sync last brought a change to a case this device already held (a colleague's note, a
-- new agreement): the case list marks the case "nyt siden sidst" until the worker opens it
-- (the access log records the opening).
CREATE TABLE case_remote_change (
  case_id TEXT PRIMARY KEY,
  at TEXT NOT NULL
);
-- The worker's last opening of each case, found without reading the whole access log.
CREATE INDEX access_log_openings ON access_log (case_id, action, at);
