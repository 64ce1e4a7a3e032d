//! `feltkontor-demo`: writes a demo municipality into a new encrypted local store.

use anyhow::{bail, Context};
use clap::Parser;
use feltkontor_core::store::{Store, StoreLocation};
use feltkontor_core::{Clock, SystemClock};
use feltkontor_demo::{generate, DemoSize, DemoStaff};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Creates synthetic demo data (never real people) in a new encrypted local store.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Folder of the worker's local store; created.
    #[arg(long)]
    dir: PathBuf,
    /// Passphrase of the new store.
    #[arg(
        long,
        env = "FELTKONTOR_DEMO_PASSPHRASE",
        default_value = "demo-kodeord-feltkontor"
    )]
    passphrase: String,
    /// Number of cases.
    #[arg(long)]
    cases: Option<usize>,
    /// Average notes per case.
    #[arg(long)]
    notes_per_case: Option<usize>,
    /// Average family and network members per case.
    #[arg(long)]
    persons_per_case: Option<usize>,
    /// Notes in the first case (coordinated by the worker): a long history. The bench size
    /// has 3,000.
    #[arg(long)]
    long_case_notes: Option<usize>,
    /// The benchmark size: 2,000 cases, 100,000 notes, 20,000 persons.
    #[arg(long)]
    bench: bool,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Replace an existing store in `dir`.
    #[arg(long)]
    force: bool,
    /// Do nothing if a store exists in `dir`.
    #[arg(long)]
    if_missing: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let loc = StoreLocation::new(&args.dir);
    if loc.exists() || loc.database().exists() {
        if args.if_missing {
            println!("demo data already exists in {}", args.dir.display());
            return Ok(());
        }
        if !args.force {
            bail!(
                "{} already holds local data; pass --force to replace it",
                args.dir.display()
            );
        }
        for f in [loc.database(), loc.key_file(), loc.attempts_file()] {
            let _ = std::fs::remove_file(&f);
        }
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", loc.database().display()));
        }
    }
    let base = if args.bench {
        DemoSize::BENCH
    } else {
        DemoSize::DEFAULT
    };
    let size = DemoSize {
        cases: args.cases.unwrap_or(base.cases),
        notes_per_case: args.notes_per_case.unwrap_or(base.notes_per_case),
        persons_per_case: args.persons_per_case.unwrap_or(base.persons_per_case),
        long_case_notes: args.long_case_notes.unwrap_or(base.long_case_notes),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let people = DemoStaff::new(args.seed);
    // Written beside the target and moved into place only when complete, so an interrupted
    // run never leaves a half-filled store where the app would open it.
    let partial = args.dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    let mut store = Store::create(
        &StoreLocation::new(&partial),
        &args.passphrase,
        people.worker().id,
        clock.clone(),
    )
    .context("could not create the local store")?;
    let started = Instant::now();
    let summary = generate(
        &mut store,
        &people,
        &size,
        args.seed,
        clock.now(),
        |done, total| {
            if done % 100 == 0 || done == total {
                eprint!("\r{done}/{total} cases");
            }
        },
    )?;
    eprintln!();
    let secs = started.elapsed().as_secs_f64();
    store.lock();
    std::fs::create_dir_all(&args.dir)?;
    // The key file last: a folder without it is not a store, so a crash mid-move is harmless.
    let key_name = loc.key_file().file_name().map(ToOwned::to_owned);
    let mut names: Vec<_> = std::fs::read_dir(&partial)?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort_by_key(|n| Some(n) == key_name.as_ref());
    for name in names {
        std::fs::rename(partial.join(&name), args.dir.join(&name))
            .with_context(|| format!("could not move the data to {}", args.dir.display()))?;
    }
    std::fs::remove_dir(&partial)?;
    println!(
        "demo data in {}: {} teams, {} staff, {} cases, {} persons, {} notes, {} consents, {} agreements",
        args.dir.display(),
        summary.teams,
        summary.staff,
        summary.cases,
        summary.persons,
        summary.notes,
        summary.consents,
        summary.agreements
    );
    if let Some(name) = &summary.long_case {
        println!("long case: {name}");
    }
    println!(
        "signed-in worker: {}; generated in {secs:.1} s ({:.0} notes/s)",
        summary.worker_name,
        summary.notes as f64 / secs
    );
    Ok(())
}
