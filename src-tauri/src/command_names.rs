// The app's own commands, by name: `build.rs` generates an `allow-<command>` permission for
// each, the capability grants exactly these, and a test checks both against the bindings.
pub const COMMANDS: &[&str] = &[
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
    "first_run",
    "open_case",
    "persons_of_case",
    "save_person",
    "network",
    "change_passphrase",
    "device_info",
];
