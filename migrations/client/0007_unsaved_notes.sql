-- Text a worker typed that could not be saved as a draft (a refused save: the note's time in
-- the future, a field past its length limit, a rule). It is kept here, inside the encrypted
-- store and never synced, until the note is saved or the worker discards it: nothing typed is
-- lost because a save was refused. `key` is the editor's own key for one piece of writing.
CREATE TABLE unsaved_note (
  key TEXT PRIMARY KEY,
  case_id TEXT NOT NULL,
  note_id TEXT,
  draft TEXT NOT NULL,
  reason TEXT NOT NULL,
  kept_at TEXT NOT NULL
);
CREATE INDEX unsaved_note_by_case ON unsaved_note (case_id);
CREATE INDEX unsaved_note_by_note ON unsaved_note (note_id);
