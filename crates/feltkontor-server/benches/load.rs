//! `make bench-server`: authenticated case-overview reads by 200 concurrent clients on loopback,
//! against the release server binary, on SQLite and on PostgreSQL. Writes
//! target/bench/server.md.
//!
//! Data: the demo municipality (300 cases) seeded through the admin command; 40 workers each
//! enroll one device; 200 clients (five per device) read the overviews of their worker's cases
//! in a loop for 15 seconds after a 3-second warm-up. Every read is authorized and audited
//! exactly as in production (one audit row per read, in the read's transaction).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_feltkontor-server");
const PASSWORD: &str = "bench-kodeord-feltkontor";
const CLIENTS: usize = 200;
const DEVICES: usize = 40;
const WARMUP: Duration = Duration::from_secs(3);
const RUN: Duration = Duration::from_secs(15);

fn admin(url: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(BIN)
        .args(["--database-url", url, "admin"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "admin {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

struct Figures {
    engine: &'static str,
    requests: usize,
    errors: usize,
    secs: f64,
    p50: f64,
    p99: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn run(engine: &'static str, owner_url: &str, app_url: &str) -> Figures {
    if engine == "postgres" {
        admin(owner_url, &["migrate"], None);
    }
    let accounts = admin(owner_url, &["demo", "--cases", "300"], Some(PASSWORD));
    let users: Vec<String> = accounts
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(BIN)
        .args([
            "--database-url",
            app_url,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--device-rate",
            "1000000",
            "--account-rate",
            "1000000",
            "--address-rate",
            "1000000",
            "--pool-size",
            "16",
        ])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let figures = rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().unwrap();
        for _ in 0..200 {
            if http.get(format!("{base}/health")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Enroll one device for each of the first DEVICES workers that have cases.
        let mut devices: Vec<(String, Vec<String>)> = Vec::new();
        for u in &users {
            if devices.len() == DEVICES {
                break;
            }
            let code = admin(owner_url, &["enrollment-code", "--username", u], None);
            let tok: serde_json::Value = http
                .post(format!("{base}/v1/enroll"))
                .json(&serde_json::json!({"code": code.trim(), "username": u, "password": PASSWORD, "device_name": "bench"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = tok["access_token"].as_str().unwrap().to_owned();
            let list: serde_json::Value =
                http.get(format!("{base}/v1/cases")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            let cases: Vec<String> =
                list["cases"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
            if !cases.is_empty() {
                devices.push((token, cases));
            }
        }
        let devices = Arc::new(devices);
        let start = Instant::now();
        let measure_from = start + WARMUP;
        let end = measure_from + RUN;
        let mut tasks = Vec::new();
        for i in 0..CLIENTS {
            let http = http.clone();
            let devices = devices.clone();
            let base = base.clone();
            tasks.push(tokio::spawn(async move {
                let (token, cases) = &devices[i % devices.len()];
                let mut lat = Vec::new();
                let mut errors = 0;
                let mut n = i;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let case = &cases[(n >> 33) % cases.len()];
                    let ok = match http.get(format!("{base}/v1/cases/{case}")).bearer_auth(token).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if t0 >= measure_from {
                        if ok {
                            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            all.extend(l);
            errors += e;
        }
        all.sort_by(|a, b| a.total_cmp(b));
        Figures { engine, requests: all.len(), errors, secs: RUN.as_secs_f64(), p50: pct(&all, 0.5), p99: pct(&all, 0.99) }
    });
    let _ = server.kill();
    let _ = server.wait();
    figures
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("central.db").display());
    let mut results = vec![run("sqlite", &sqlite, &sqlite)];
    let name = format!("ft_bench_{}", std::process::id());
    let mut pg = postgres::Client::connect(
        "postgres://postgres@127.0.0.1:5432/postgres",
        postgres::NoTls,
    )
    .unwrap();
    pg.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    pg.batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    results.push(run(
        "postgres",
        &format!("postgres://postgres@127.0.0.1:5432/{name}"),
        &format!("postgres://feltkontor_app@127.0.0.1:5432/{name}"),
    ));
    pg.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();

    let mut md = String::from(
        "| engine | clients | requests/s | p50 | p99 | errors |\n|---|---|---|---|---|---|\n",
    );
    for f in &results {
        md += &format!(
            "| {} | {CLIENTS} | {:.0} | {:.1} ms | {:.1} ms | {} |\n",
            f.engine,
            f.requests as f64 / f.secs,
            f.p50,
            f.p99,
            f.errors
        );
    }
    println!("{md}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("server.md"), md).unwrap();
}
