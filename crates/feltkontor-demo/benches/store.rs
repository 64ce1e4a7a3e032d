//! `make bench`: the store's hot paths on the bench-size data set (2,000 cases, ~100,000 notes,
//! ~20,000 persons) in one encrypted database on disk. Prints a Markdown table and writes it to
//! `target/bench/store.md`. `FELTKONTOR_BENCH_CASES=200` runs a smaller set for a quick look.

use feltkontor_core::domain::{CaseNote, SensitiveText};
use feltkontor_core::store::queries::CaseFilter;
use feltkontor_core::store::{Store, StoreLocation};
use feltkontor_core::{Clock, SystemClock};
use feltkontor_demo::{generate, DemoSize, DemoStaff};
use feltkontor_wire::{Audience, CaseId, NoteId, NoteKind, NoteStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "benchmark passphrase";

struct Stats(Vec<Duration>);

impl Stats {
    fn measure(n: usize, mut f: impl FnMut(usize)) -> Stats {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            f(i);
            v.push(t.elapsed());
        }
        v.sort();
        Stats(v)
    }

    fn pct(&self, p: f64) -> f64 {
        let i = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len()) - 1;
        self.0[i].as_secs_f64() * 1000.0
    }
}

fn row(out: &mut String, name: &str, s: &Stats, tail: f64, target: &str) {
    let tail_name = if tail > 0.98 { "p99" } else { "p95" };
    writeln!(
        out,
        "| {name} | {} | {:.2} ms | {tail_name} {:.2} ms | {:.2} ms | {target} |",
        s.0.len(),
        s.pct(0.5),
        s.pct(tail),
        s.pct(1.0)
    )
    .unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` must not run this.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let cases: usize = std::env::var("FELTKONTOR_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DemoSize::BENCH.cases);
    let size = DemoSize {
        cases,
        ..DemoSize::BENCH
    };
    let tmp = tempfile::tempdir().unwrap();
    let loc = StoreLocation::new(tmp.path());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let people = DemoStaff::new(42);
    let mut store = Store::create(&loc, PASSPHRASE, people.worker().id, clock.clone()).unwrap();

    eprintln!("generating {} cases …", size.cases);
    let t = Instant::now();
    let summary = generate(&mut store, &people, &size, 42, clock.now(), |_, _| {}).unwrap();
    let gen_secs = t.elapsed().as_secs_f64();
    store.lock();
    let db_bytes: u64 = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();

    eprintln!("unlock …");
    let unlock = Stats::measure(10, |_| {
        Store::open(&loc, PASSPHRASE, clock.clone()).unwrap().lock();
    });

    let mut store = Store::open(&loc, PASSPHRASE, clock.clone()).unwrap();
    let mine: Vec<CaseId> = store
        .my_cases(&CaseFilter::default())
        .unwrap()
        .iter()
        .map(|c| c.case_id)
        .collect();
    let all: Vec<CaseId> = store
        .conn()
        .prepare("SELECT id FROM cases")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|s| s.unwrap().parse().unwrap())
        .collect();
    let open_mine: Vec<CaseId> = mine.clone();
    let mut rng = StdRng::seed_from_u64(7);
    let worker = store.worker_id();

    eprintln!("save note …");
    let body = "Hjemmebesøg hos familien. Mor fortæller, at morgenerne er blevet lettere, og at Søren nu kommer i skole hver dag. ".repeat(6);
    let save = Stats::measure(1000, |i| {
        let note = CaseNote {
            id: NoteId::new(),
            case_id: open_mine[i % open_mine.len()],
            author_id: worker,
            kind: NoteKind::HomeVisit,
            occurred_at: clock.now() - time::Duration::hours(1),
            body: SensitiveText(body.clone()),
            child_words: SensitiveText("Jeg kan godt lide min nye lærer".into()),
            family_perspective: SensitiveText::default(),
            statutory: true,
            audience: Audience::CaseTeam,
            status: NoteStatus::Draft,
            signed_at: None,
            content_hash: None,
            addendum_to: None,
        };
        store.write(|w| w.save_note(&note)).unwrap();
    });

    eprintln!("autosave (update a draft) …");
    let draft_id = NoteId::new();
    let mut draft = CaseNote {
        id: draft_id,
        case_id: open_mine[0],
        author_id: worker,
        kind: NoteKind::Meeting,
        occurred_at: clock.now() - time::Duration::hours(1),
        body: SensitiveText(String::new()),
        child_words: SensitiveText::default(),
        family_perspective: SensitiveText("Familien".into()),
        statutory: false,
        audience: Audience::CaseTeam,
        status: NoteStatus::Draft,
        signed_at: None,
        content_hash: None,
        addendum_to: None,
    };
    let autosave = Stats::measure(500, |i| {
        // The draft grows as the worker types, as autosave sees it.
        draft.body = SensitiveText(body.chars().take(200 + i).collect());
        store.write(|w| w.save_note(&draft)).unwrap();
    });

    eprintln!("my cases … ({} rows)", mine.len());
    let my_cases = Stats::measure(200, |_| {
        store.my_cases(&CaseFilter::default()).unwrap();
    });

    eprintln!("case overview …");
    let overview = Stats::measure(500, |_| {
        let id = all[rng.gen_range(0..all.len())];
        store.case_overview(id).unwrap();
    });

    eprintln!("timeline …");
    let timeline = Stats::measure(500, |_| {
        let id = all[rng.gen_range(0..all.len())];
        let first = store.notes_timeline(id, None, 25).unwrap();
        if let Some(next) = first.next {
            store.notes_timeline(id, Some(&next), 25).unwrap();
        }
    });

    eprintln!("search …");
    let queries = [
        "søren",
        "soeren",
        "fravær",
        "hjemmebesøg",
        "mor",
        "skole",
        "aarhus",
        "bekymr",
        "netværksmøde",
        "søvn",
        "bedstemor",
        "fodbold",
        "prøvehandling",
        "tolk",
        "ma",
        "ny klasse",
        "Hansen",
        "Ærenlund",
        "gellerup",
        "overgang",
    ];
    let search = Stats::measure(queries.len() * 20, |i| {
        store.search(queries[i % queries.len()], 20).unwrap();
    });
    let per_query: Vec<(&str, Stats)> = queries
        .iter()
        .map(|q| {
            (
                *q,
                Stats::measure(10, |_| {
                    store.search(q, 20).unwrap();
                }),
            )
        })
        .collect();

    let mut out = String::new();
    writeln!(out, "Data set: {} cases, {} notes, {} persons, {} staff in {} teams; database {:.0} MiB on disk (SQLCipher, WAL).", summary.cases, summary.notes, summary.persons, summary.staff, summary.teams, db_bytes as f64 / 1_048_576.0).unwrap();
    writeln!(out).unwrap();
    writeln!(out, "| operation | runs | p50 | tail | max | target |").unwrap();
    writeln!(out, "|---|---|---|---|---|---|").unwrap();
    row(
        &mut out,
        "save a new note (commit, fsync)",
        &save,
        0.99,
        "p99 ≤ 5 ms",
    );
    row(
        &mut out,
        "autosave: update a draft",
        &autosave,
        0.99,
        "p99 ≤ 5 ms",
    );
    row(&mut out, "case overview", &overview, 0.95, "p95 ≤ 10 ms");
    row(
        &mut out,
        "notes timeline: two pages of 25",
        &timeline,
        0.95,
        "",
    );
    row(
        &mut out,
        "search (notes + people, top 20)",
        &search,
        0.95,
        "p95 ≤ 20 ms",
    );
    row(&mut out, "my cases", &my_cases, 0.95, "");
    row(
        &mut out,
        "unlock (Argon2id 64 MiB, t=3, + open)",
        &unlock,
        0.95,
        "≤ 1 s",
    );
    writeln!(out).unwrap();
    writeln!(
        out,
        "Demo-data generation: {} notes (with cases, persons, relations, consents, agreements) in {:.1} s = {:.0} notes/s.",
        summary.notes,
        gen_secs,
        summary.notes as f64 / gen_secs
    )
    .unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "Search by query (10 runs each): {}",
        per_query
            .iter()
            .map(|(q, s)| format!("`{q}` {:.1} ms", s.pct(0.5)))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .unwrap();
    print!("{out}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("store.md"), out).unwrap();
}
