//! Feltkontor's desktop shell. Each command converts its input, calls the core, and converts
//! the result or error; no business logic lives here.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod ipc;
mod session;

use session::Session;
use std::sync::Arc;
use tauri::Manager;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let result = tauri::Builder::default()
        .setup(|app| {
            let dir = match std::env::var_os("FELTKONTOR_DATA_DIR") {
                Some(dir) => dir.into(),
                None => app.path().app_data_dir()?.join("profile"),
            };
            tracing::info!(dir = %dir.display(), "local data folder");
            app.manage(Arc::new(Session::new(dir)));
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_status,
            commands::unlock,
            commands::lock,
            commands::my_cases
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        tracing::error!("Feltkontor stopped: {e}");
        std::process::exit(1);
    }
}
