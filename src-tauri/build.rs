/// The app's own commands; each gets an `allow-<command>` permission, and the capability in
/// `capabilities/` grants exactly these to the main window.
const COMMANDS: &[&str] = &[
    "app_status",
    "unlock",
    "lock",
    "my_cases",
    "case_overview",
    "notes_timeline",
    "note",
    "save_draft",
    "sign_note",
    "search",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build step");
}
