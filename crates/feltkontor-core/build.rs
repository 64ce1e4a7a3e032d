//! Embeds the ordered `.sql` files of `migrations/client/` into the binary.

use std::fmt::Write;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../migrations/client");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations/client exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    let mut out = String::from("pub static MIGRATIONS: &[Migration] = &[\n");
    for (i, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let number: u32 = name
            .split('_')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("NNNN_name.sql");
        assert_eq!(
            number as usize,
            i + 1,
            "migrations are numbered 0001, 0002, … with no gaps: {name}"
        );
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            out,
            "    Migration {{ version: {number}, name: {name:?}, sql: include_str!({:?}) }},",
            path.canonicalize().unwrap().display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("migrations.rs");
    std::fs::write(dest, out).unwrap();
}
