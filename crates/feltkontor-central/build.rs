//! Embeds the central service's migrations (`migrations/server/{sqlite,postgres}`): one file per
//! version per engine, the same names in both, numbered 1, 2, 3, … with no gap.

use std::fmt::Write;
use std::path::PathBuf;

fn files(engine: &str) -> Vec<String> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../migrations/server/{engine}"));
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

fn main() {
    let sqlite = files("sqlite");
    let postgres = files("postgres");
    assert_eq!(
        sqlite, postgres,
        "migrations/server/sqlite and migrations/server/postgres must hold the same files"
    );
    let mut out = String::from("pub(crate) static MIGRATIONS: &[Migration] = &[\n");
    for (i, name) in sqlite.iter().enumerate() {
        let number: i64 = name
            .split('_')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: a migration is named NNNN_what.sql"));
        assert_eq!(
            number,
            i as i64 + 1,
            "{name}: migrations are numbered without gaps"
        );
        writeln!(
            out,
            "    Migration {{ version: {number}, name: {name:?}, sqlite: include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../../migrations/server/sqlite/{name}\")), postgres: include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../../migrations/server/postgres/{name}\")) }},"
        )
        .unwrap();
    }
    out.push_str("];\n");
    let path = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("migrations.rs");
    std::fs::write(path, out).unwrap();
}
