//! Workspace-level rules, checked from the resolved dependency graph (`cargo metadata`).

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;

/// The library crates that must run headless: no Tauri and no web framework anywhere below them.
const CORE_CRATES: &[&str] = &["feltkontor-wire", "feltkontor-core", "feltkontor-demo"];
const FORBIDDEN_PREFIXES: &[&str] = &["tauri", "wry", "tao", "webkit2gtk", "axum"];

fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every package (name) reachable from `root` through normal and build dependencies.
fn closure(meta: &Value, root: &str) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root_id = names
        .iter()
        .find(|(_, n)| **n == root)
        .map(|(id, _)| *id)
        .expect("root package");
    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    while let Some(id) = stack.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let non_dev = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].as_str() != Some("dev"));
            let dep_id = dep["pkg"].as_str().unwrap();
            if non_dev && seen.insert(names[dep_id].to_owned()) {
                stack.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn no_core_crate_depends_on_tauri_or_a_web_framework() {
    let meta = metadata();
    for krate in CORE_CRATES {
        let deps = closure(&meta, krate);
        let bad: Vec<_> = deps
            .iter()
            .filter(|d| FORBIDDEN_PREFIXES.iter().any(|p| d.starts_with(p)))
            .collect();
        assert!(bad.is_empty(), "{krate} depends on {bad:?}");
    }
}

#[test]
fn the_check_can_see_tauri_where_it_is() {
    let deps = closure(&metadata(), "feltkontor-desktop");
    assert!(
        deps.contains("tauri"),
        "the desktop shell depends on tauri, so the check above would catch it elsewhere"
    );
}
