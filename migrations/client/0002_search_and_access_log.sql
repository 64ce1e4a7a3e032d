-- Full-text search, the local access log, and the index behind "days since last contact".

-- Covering index for the latest family contact of a case (my cases list).
CREATE INDEX notes_contact ON notes (case_id, kind, occurred_at) WHERE archived = 0;

-- Every use of personal data is logged (who, what, when, which person or criterion); sync
-- uploads these entries. Append-only: the app never updates or deletes a row here except to
-- mark it uploaded.
CREATE TABLE access_log (
    id TEXT NOT NULL UNIQUE,
    at TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action TEXT NOT NULL,
    case_id TEXT,
    person_id TEXT,
    criterion TEXT,
    uploaded INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX access_log_pending ON access_log (uploaded, at);

-- The indexes hold Danish-folded text (fold_da: lower case, æ→ae, ø→oe, å→aa), so "soeren"
-- finds "Søren" and "aarhus" finds "Århus"; rowid = the row's `rid`.
CREATE VIRTUAL TABLE notes_fts USING fts5 (
    body, child_words, family_perspective,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
CREATE VIRTUAL TABLE persons_fts USING fts5 (
    name, relation,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

INSERT INTO notes_fts (rowid, body, child_words, family_perspective)
    SELECT rid, fold_da(body), fold_da(child_words), fold_da(family_perspective)
    FROM notes WHERE archived = 0;
INSERT INTO persons_fts (rowid, name, relation)
    SELECT rid, fold_da(name), fold_da(relation_label_da(relation))
    FROM persons WHERE archived = 0;
