//! Workspace-level rules, checked on the resolved dependency graph for this machine's target
//! (`cargo tree`, normal and build dependencies; dev-dependencies do not ship).

use std::collections::BTreeSet;
use std::process::Command;

/// The library crates that must run headless: no Tauri and no web framework anywhere below them.
const CORE_CRATES: &[&str] = &[
    "feltkontor-wire",
    "feltkontor-domain",
    "feltkontor-core",
    "feltkontor-demo",
    "feltkontor-central",
    "feltkontor-documents",
];
const FORBIDDEN_PREFIXES: &[&str] = &["tauri", "wry", "tao", "webkit2gtk", "axum"];

/// Names of every package `krate` depends on, transitively.
fn dependencies(krate: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            krate,
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--offline",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_core_crate_depends_on_tauri_or_a_web_framework() {
    for krate in CORE_CRATES {
        let deps = dependencies(krate);
        assert!(
            deps.len() > 5,
            "{krate}: the dependency list looks empty: {deps:?}"
        );
        let bad: Vec<_> = deps
            .iter()
            .filter(|d| FORBIDDEN_PREFIXES.iter().any(|p| d.starts_with(p)))
            .collect();
        assert!(bad.is_empty(), "{krate} depends on {bad:?}");
    }
}

#[test]
fn the_server_is_the_only_crate_with_axum_and_has_no_tauri() {
    let deps = dependencies("feltkontor-server");
    assert!(
        deps.contains("axum"),
        "the check would see axum in a core crate"
    );
    let bad: Vec<_> = deps
        .iter()
        .filter(|d| {
            ["tauri", "wry", "tao", "webkit2gtk"]
                .iter()
                .any(|p| d.starts_with(p))
        })
        .collect();
    assert!(bad.is_empty(), "feltkontor-server depends on {bad:?}");
}

#[test]
fn the_check_sees_tauri_where_it_is() {
    assert!(
        dependencies("feltkontor-desktop").contains("tauri"),
        "the desktop shell depends on tauri, so the check above would catch it in a core crate"
    );
}

/// The domain's rules hold no store; the central service's library uses them, not the
/// device's encrypted store or the demo generator.
#[test]
fn the_domain_has_no_store_and_the_central_library_no_device_store() {
    let domain = dependencies("feltkontor-domain");
    for bad in ["rusqlite", "libsqlite3-sys", "feltkontor-core"] {
        assert!(!domain.contains(bad), "feltkontor-domain depends on {bad}");
    }
    let central = dependencies("feltkontor-central");
    assert!(central.contains("feltkontor-domain"));
    for bad in ["feltkontor-core", "feltkontor-demo"] {
        assert!(
            !central.contains(bad),
            "feltkontor-central depends on {bad}"
        );
    }
}
