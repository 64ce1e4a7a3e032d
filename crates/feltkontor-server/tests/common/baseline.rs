//! The benchmarks' ceiling for a first sync: the same rows written raw.

use std::time::{Duration, Instant};

/// Raw bulk insert of `rows` into a new encrypted SQLite file, in one transaction: the
/// baseline for the first sync.
pub fn bulk_insert(rows: &[(String, String, String)]) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("bulk.db")).unwrap();
    conn.pragma_update(
        None,
        "key",
        "x'2DD29CA851E7B56E4697B0E1F08507293D761A05CE4D1B628663F411A8086D99'",
    )
    .unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE records (entity TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
                               PRIMARY KEY (entity, id));",
    )
    .unwrap();
    let start = Instant::now();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut stmt = tx
            .prepare("INSERT INTO records (entity, id, data) VALUES (?1, ?2, ?3)")
            .unwrap();
        for (e, id, data) in rows {
            stmt.execute((e, id, data)).unwrap();
        }
    }
    tx.commit().unwrap();
    start.elapsed()
}
