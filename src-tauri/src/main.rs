//! Feltkontor's desktop shell. Each command converts its input, calls the core, and converts
//! the result or error; no business logic lives here.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod bindings;
#[cfg(test)]
mod command_names;
mod commands;
mod history;
mod ipc;
mod quarantine;
mod session;
mod setup;
mod sync;

/// A sync allocates and frees many small values on two threads at once (the stream reader and
/// the store), where glibc's malloc contends (see BENCHMARKS.md, sync).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use session::Session;
use std::sync::Arc;
use tauri::Manager;

/// Keys and case data live in this process's memory: never write it to a core dump, and
/// refuse other processes of the same user a ptrace look at it.
#[cfg(target_os = "linux")]
fn forbid_core_dumps() {
    use rustix::process::{set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit};
    if let Err(e) = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    ) {
        tracing::warn!("could not disable core dumps: {e}");
    }
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        tracing::warn!("could not mark the process undumpable: {e}");
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    forbid_core_dumps();
    // WebKitGTK composites through OpenGL, which on machines without a usable GPU (and under
    // Xvfb) means Mesa's software rasteriser in the web process: ~170 MiB more for a UI of
    // forms, lists and one SVG map that needs none of it (BENCHMARKS.md). Set before any thread
    // starts; a value the user set wins (`0` turns compositing back on).
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let ipc = bindings::builder();
    let result = tauri::Builder::default()
        .setup(|app| {
            let dir = match std::env::var_os("FELTKONTOR_DATA_DIR") {
                Some(dir) => dir.into(),
                None => app.path().app_data_dir()?.join("profile"),
            };
            tracing::info!(dir = %dir.display(), "local data folder");
            let session = Arc::new(Session::new(dir));
            app.manage(Arc::clone(&session));
            tauri::async_runtime::spawn(sync::background(session));
            // The memory benchmark's baseline: the same build, page and bundle, nothing mounted.
            if std::env::var_os("FELTKONTOR_EMPTY_WINDOW").is_some() {
                if let Some(window) = app.get_webview_window("main") {
                    let mut url = window.url()?;
                    url.set_query(Some("empty"));
                    window.navigate(url)?;
                }
            }
            Ok(())
        })
        .invoke_handler(ipc.invoke_handler())
        .run(tauri::generate_context!());
    if let Err(e) = result {
        tracing::error!("Feltkontor stopped: {e}");
        std::process::exit(1);
    }
}
