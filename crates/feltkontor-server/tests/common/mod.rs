//! The harness for the server's integration tests: a fresh database on SQLite (a file in a
//! temporary folder) or PostgreSQL (a new database on 127.0.0.1:5432, dropped afterwards), the
//! real `feltkontor-server` binary on a loopback port, and the admin commands.
#![allow(dead_code)]

use feltkontor_central::db::{Conn, DatabaseUrl};
use serde_json::Value;
use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_feltkontor-server");
pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const PASSWORD: &str = "korrekt-hest-batteri-haefteklamme";
/// Rate limits out of the way, for benchmarks that measure the service, not its limits.
pub const FAST_LIMITS: [&str; 8] = [
    "--device-rate",
    "1000000",
    "--account-rate",
    "1000000",
    "--address-rate",
    "1000000",
    "--credential-rate",
    "1000000",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub struct Db {
    pub kind: Kind,
    /// The tables' owner: migrations and admin commands.
    pub owner_url: String,
    /// What the server runs as.
    pub app_url: String,
    pg_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl Db {
    pub fn new(kind: Kind) -> Db {
        let dir = tempfile::tempdir().unwrap();
        match kind {
            Kind::Sqlite => {
                let url = format!("sqlite:{}", dir.path().join("central.db").display());
                Db {
                    kind,
                    owner_url: url.clone(),
                    app_url: url,
                    pg_name: None,
                    _dir: dir,
                }
            }
            Kind::Postgres => {
                let name = format!("ft_{}", uuid::Uuid::now_v7().simple());
                let mut c = postgres::Client::connect(PG_ADMIN, postgres::NoTls)
                    .expect("PostgreSQL on 127.0.0.1:5432 (`.ci/run` starts it)");
                c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
                Db {
                    kind,
                    owner_url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    app_url: format!("postgres://feltkontor_app@127.0.0.1:5432/{name}"),
                    pg_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }

    /// A database a test set up itself, at these URLs (not dropped afterwards).
    pub fn at(kind: Kind, owner_url: String, app_url: String) -> Db {
        Db {
            kind,
            owner_url,
            app_url,
            pg_name: None,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn migrated(kind: Kind) -> Db {
        let db = Db::new(kind);
        db.admin(&["migrate"], None).success();
        db
    }

    /// A connection as the tables' owner (for arranging data and inspecting it).
    pub fn owner(&self) -> Box<dyn Conn> {
        self.owner_url
            .parse::<DatabaseUrl>()
            .unwrap()
            .connect()
            .unwrap()
    }

    pub fn admin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--database-url")
            .arg(&self.owner_url)
            .arg("admin")
            .args(args);
        run(cmd, stdin)
    }

    /// Changes applied by sync, as the audit log counts them (one `sync_write` each).
    #[allow(dead_code)]
    pub fn audited_writes(&self) -> i64 {
        self.owner()
            .query_one(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'sync_write' AND result = 'ok'",
                feltkontor_central::params![],
            )
            .unwrap()
            .unwrap()
            .int(0)
            .unwrap()
    }

    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut c) = postgres::Client::connect(PG_ADMIN, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(self) -> Output {
        assert!(
            self.status.success(),
            "command failed: {}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

pub fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where each test server's log goes; `make test` greps them all afterwards for personal data.
pub fn log_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/server-logs");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Server {
    pub base: String,
    pub child: Child,
    pub log: PathBuf,
}

/// reqwest is built without a TLS provider (the sync client installs ring, like the server):
/// every test process installs it before its first client.
pub fn tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Server {
    /// On a port the server picks itself (read from its log): no two tests ever race for one.
    pub fn start(db: &Db, extra: &[&str]) -> Server {
        Server::start_on(db, 0, extra)
    }

    /// On a given port (a restart after [`Server::kill`] comes back where clients expect it),
    /// or on one the system picks (`0`).
    pub fn start_on(db: &Db, port: u16, extra: &[&str]) -> Server {
        tls_provider();
        let log = log_dir().join(format!("{}-{port}.log", uuid::Uuid::now_v7().simple()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .arg("--database-url")
            .arg(&db.app_url)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .env(
                "RUST_LOG",
                // Benchmarks ask for less.
                // Benchmarks ask for less; the "listening" line is always there.
                std::env::var("FELTKONTOR_TEST_SERVER_LOG")
                    .map(|filter| format!("{filter},feltkontor_server=info"))
                    .unwrap_or_else(|_| {
                        "debug,hyper=info,tokio_postgres=info,postgres=info".into()
                    }),
            )
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let mut server = Server {
            base: format!("http://127.0.0.1:{port}"),
            child,
            log,
        };
        if port == 0 {
            let deadline = Instant::now() + Duration::from_secs(30);
            let port = loop {
                let text = server.log_text();
                if let Some(port) = text
                    .lines()
                    .filter(|l| l.contains("listening"))
                    .find_map(|l| l.split("addr=127.0.0.1:").nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|p| p.parse::<u16>().ok())
                {
                    break port;
                }
                assert!(
                    server.child.try_wait().unwrap().is_none() && Instant::now() < deadline,
                    "the server did not start: {text}"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            server.base = format!("http://127.0.0.1:{port}");
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // `Connection: close`: the probe leaves no connection open behind it (tests count
            // the connections they open).
            let probe = reqwest::blocking::Client::new()
                .get(format!("{}/health", server.base))
                .header("connection", "close")
                .send();
            if let Ok(r) = probe {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
        Client {
            base: self.base.clone(),
            http: {
                tls_provider();
                reqwest::blocking::Client::new()
            },
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::blocking::Client,
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl Client {
    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Resp {
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req)
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
    }

    pub fn post_raw(&self, path: &str, body: Vec<u8>) -> Resp {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body),
        )
    }

    /// Enrolls a device for `username` with a fresh code; returns the token response.
    pub fn enroll(&self, db: &Db, username: &str) -> Value {
        let code = db
            .admin(&["enrollment-code", "--username", username], None)
            .success()
            .stdout;
        let r = self.post(
            "/v1/enroll",
            &serde_json::json!({"code": code.trim(), "username": username, "password": PASSWORD, "device_name": "Testmaskine"}),
        );
        assert_eq!(r.status, 200, "enroll {username}: {:?}", r.body);
        r.body
    }
}

pub fn token(v: &Value) -> String {
    v["access_token"].as_str().unwrap().to_owned()
}

pub fn both(test: impl Fn(Kind)) {
    test(Kind::Sqlite);
    test(Kind::Postgres);
}

/// One test per backend: `backends!(name);` runs `name(Kind)` as `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! backends {
    ($f:ident) => {
        mod $f {
            #[test]
            fn sqlite() {
                super::$f($crate::common::Kind::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$f($crate::common::Kind::Postgres)
            }
        }
    };
}

pub mod balancer;
pub mod baseline;
pub mod convergence;
pub mod devices;
pub mod insider;
pub mod municipal;
pub mod proxy;
pub mod world;
