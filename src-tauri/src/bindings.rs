//! The IPC surface in one place: the commands the webview may call, and the TypeScript
//! bindings generated from their Rust types into `ui/src/lib/bindings.ts`. The test below fails
//! when the committed bindings drift from the Rust types; `make bindings` rewrites them.

use crate::{commands, history, quarantine};
use tauri_specta::{collect_commands, Builder};

pub fn builder() -> Builder<tauri::Wry> {
    Builder::<tauri::Wry>::new()
        .disable_serde_phases()
        .commands(collect_commands![
            commands::app_status,
            commands::unlock,
            commands::lock,
            commands::my_cases,
            commands::case_overview,
            commands::notes_timeline,
            commands::note,
            commands::save_draft,
            commands::sign_note,
            commands::discard_draft,
            commands::unsaved_note,
            commands::unsaved_in_case,
            commands::discard_unsaved,
            commands::passphrase_strength,
            commands::close_case,
            commands::reopen_case,
            commands::my_week,
            commands::acknowledge_handover,
            commands::save_appointment,
            commands::visit_sheet,
            history::case_history,
            commands::visit_sheet_pdf,
            commands::link_appointment_note,
            commands::search,
            commands::first_run,
            commands::open_case,
            commands::persons_of_case,
            commands::save_person,
            commands::network,
            commands::change_passphrase,
            commands::device_info,
            commands::team_staff,
            commands::add_participant,
            commands::record_consent,
            commands::withdraw_consent,
            commands::add_agreement,
            commands::mark_agreement_done,
            commands::handover,
            commands::connect,
            commands::sync_status,
            commands::renew_lease,
            commands::retire_device,
            commands::sync_now,
            commands::conflicts,
            commands::resolve_conflict,
            commands::rejected_changes,
            quarantine::quarantined_notes,
            quarantine::resolve_quarantined,
            commands::worker,
        ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command_names::COMMANDS;
    use specta_typescript::Typescript;

    const BINDINGS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/src/lib/bindings.ts");

    fn typescript() -> Typescript {
        Typescript::default()
            .header("// Generated from the Rust types by `make bindings`; do not edit by hand.\n")
    }

    #[test]
    fn committed_typescript_bindings_match_the_rust_types() {
        let tmp =
            std::env::temp_dir().join(format!("feltkontor-bindings-{}.ts", std::process::id()));
        builder()
            .export(typescript(), &tmp)
            .expect("bindings export");
        let fresh = std::fs::read_to_string(&tmp).unwrap();
        let _ = std::fs::remove_file(&tmp);
        if std::env::var_os("FELTKONTOR_WRITE_BINDINGS").is_some() {
            std::fs::write(BINDINGS_PATH, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(BINDINGS_PATH).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/lib/bindings.ts is out of date with the Rust types; run `make bindings` and commit the result"
        );
    }

    #[test]
    fn every_command_is_in_the_capability_allowlist() {
        let capability: serde_json::Value =
            serde_json::from_str(include_str!("../capabilities/main.json")).unwrap();
        let allowed: Vec<&str> = capability["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        let bindings = std::fs::read_to_string(BINDINGS_PATH).unwrap();
        for command in COMMANDS {
            assert!(
                bindings.contains(&format!("\"{command}\"")),
                "{command} missing from the bindings"
            );
            let permission = format!("allow-{}", command.replace('_', "-"));
            assert!(
                allowed.contains(&permission.as_str()),
                "{permission} missing from the capability"
            );
        }
        assert_eq!(
            allowed.len(),
            COMMANDS.len(),
            "the capability grants only the app's own commands: {allowed:?}"
        );
    }
}
