//! Landed migrations cannot change silently: every migration file of the app's store and of
//! the central service (both engines) is listed with its SHA-256 in `migrations/landed.sha256`.
//! An edited, removed or unlisted file fails here, before any database ever sees it (the
//! service also verifies the checksums it recorded at every start; the app at every open).

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sql_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sql_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "sql") {
            out.push(path);
        }
    }
}

#[test]
fn landed_migrations_are_unchanged() {
    let root = root();
    let manifest = std::fs::read_to_string(root.join("migrations/landed.sha256")).unwrap();
    let listed: BTreeMap<String, String> = manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (sum, path) = l.split_once("  ").expect("sha256sum format: HASH  PATH");
            (path.to_owned(), sum.to_owned())
        })
        .collect();
    let mut files = Vec::new();
    sql_files(&root.join("migrations"), &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let sum = hex(&Sha256::digest(std::fs::read(file).unwrap()));
        match listed.get(&rel) {
            None => problems.push(format!(
                "{rel} is not listed: once it is final, add `{sum}  {rel}` to migrations/landed.sha256"
            )),
            Some(want) if *want != sum => problems.push(format!(
                "{rel} was edited after it landed: restore it and put the change in a new migration"
            )),
            Some(_) => {}
        }
    }
    for rel in listed.keys() {
        if !root.join(rel).exists() {
            problems.push(format!("{rel} landed and was removed: restore it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(listed.len() >= 25);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
