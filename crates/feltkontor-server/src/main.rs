//! `feltkontor-server`: the municipality's central service for Feltkontor.
//!
//!   feltkontor-server serve [--listen ADDR] [--database-url URL] [--tls-cert F --tls-key F]
//!   feltkontor-server admin <command>      (teams, staff, devices, audit log; see --help)

mod demo;
mod http;
mod listen;
mod live;
mod proxy;

/// A sync stream allocates and frees many small values on several threads at once, where
/// glibc's malloc contends; the app uses the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use feltkontor_central::clock::{Clock, OffsetClock, SystemClock};
use feltkontor_central::db::DatabaseUrl;
use feltkontor_central::limits::RateLimiter;
use feltkontor_central::{admin, audit, Central, Config};
use feltkontor_wire::{Profession, StaffSector};
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "feltkontor-server",
    version,
    about = "Feltkontor's central service"
)]
struct Cli {
    /// Where the data lives: sqlite:PATH (embedded, zero set-up) or postgres://… (production).
    #[arg(
        long,
        env = "FELTKONTOR_DATABASE_URL",
        default_value = "sqlite:data/central.db",
        global = true
    )]
    database_url: String,
    /// For tests: a file holding milliseconds added to the system clock, read at every use, so a
    /// test moves the service's time (and the admin commands', given the same file).
    #[arg(long, global = true, hide = true)]
    test_clock_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve(Serve),
    /// Administration: schema, teams, staff, devices, audit log.
    #[command(subcommand)]
    Admin(Admin),
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Args)]
struct Serve {
    /// Address to listen on.
    #[arg(long, env = "FELTKONTOR_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "FELTKONTOR_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "FELTKONTOR_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Serve plain HTTP on a non-loopback address because a TLS-terminating proxy stands in front.
    #[arg(long, env = "FELTKONTOR_BEHIND_TLS_PROXY")]
    behind_tls_proxy: bool,
    /// Load balancers or proxies whose `X-Forwarded-For` names the client (addresses or
    /// ranges, e.g. `10.20.0.0/16`; repeat or separate with commas). Without it the header is
    /// ignored and every request counts as from the address that connected.
    #[arg(long = "trusted-proxy", env = "FELTKONTOR_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_range)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Database connections per instance.
    #[arg(long, env = "FELTKONTOR_POOL_SIZE", default_value_t = 16)]
    pool_size: usize,
    /// Seconds one database connection is used before it is closed and replaced.
    #[arg(long, env = "FELTKONTOR_POOL_MAX_LIFETIME", default_value_t = 1800)]
    pool_max_lifetime: u64,
    /// Requests of one device that run at once (more are told to wait a second).
    #[arg(long, env = "FELTKONTOR_DEVICE_REQUESTS", default_value_t = 6)]
    device_requests: usize,
    /// Requests per second allowed per device.
    #[arg(long, env = "FELTKONTOR_DEVICE_RATE", default_value_t = 50.0)]
    device_rate: f64,
    /// Requests per second allowed per account.
    #[arg(long, env = "FELTKONTOR_ACCOUNT_RATE", default_value_t = 100.0)]
    account_rate: f64,
    /// Hours a device may stay away before its lease runs out and its local store cannot be
    /// unlocked until it comes back (renewed at every token refresh).
    #[arg(long, env = "FELTKONTOR_LEASE_HOURS", default_value_t = 72.0)]
    lease_hours: f64,
    /// Requests per second per client address on the unauthenticated endpoints (enrollment,
    /// token refresh, lease): a flood guard. Behind NAT a whole municipality may share one
    /// address, so it is sized for that; the per-account and per-device limit is
    /// `--credential-rate`. Behind a load balancer, name it with `--trusted-proxy`.
    #[arg(long, env = "FELTKONTOR_ADDRESS_RATE", default_value_t = 100.0)]
    address_rate: f64,
    /// Requests per second per account (enrollment, lease) or per refresh token (one device)
    /// on the unauthenticated endpoints; ten saved up.
    #[arg(long, env = "FELTKONTOR_CREDENTIAL_RATE", default_value_t = 1.0)]
    credential_rate: f64,
    /// A request running longer than this many seconds is stopped.
    #[arg(long, env = "FELTKONTOR_REQUEST_TIMEOUT", default_value_t = 30)]
    request_timeout: u64,
    /// Pull streams (first syncs) open at once on this instance; more are told to retry.
    #[arg(long, env = "FELTKONTOR_MAX_STREAMS", default_value_t = 64)]
    max_streams: usize,
    /// Pull streams one device may have open at once.
    #[arg(long, env = "FELTKONTOR_MAX_STREAMS_PER_DEVICE", default_value_t = 2)]
    max_streams_per_device: usize,
    /// Seconds a streamed page may wait for its reader before the stream ends; a connection
    /// whose peer takes none of an answer for as long is closed.
    #[arg(long, env = "FELTKONTOR_STREAM_SEND_TIMEOUT", default_value_t = 30)]
    stream_send_timeout: u64,
    /// Connections open at once; one more is closed at once.
    #[arg(long, env = "FELTKONTOR_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Connections open at once from one client address (an office's or a school's network
    /// shares one address; a trusted proxy's connections are not counted).
    #[arg(
        long,
        env = "FELTKONTOR_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 512
    )]
    max_connections_per_address: usize,
    /// Seconds a client has to send a request's headers (also the idle time between requests
    /// on a kept-open connection).
    #[arg(long, env = "FELTKONTOR_HEADER_TIMEOUT", default_value_t = 30)]
    header_timeout: u64,
    /// Seconds to let requests in flight finish after SIGTERM/SIGINT.
    #[arg(long, default_value_t = 20)]
    shutdown_grace: u64,
    /// Log as JSON lines.
    #[arg(long, env = "FELTKONTOR_LOG_JSON")]
    log_json: bool,
}

#[derive(Subcommand)]
enum Admin {
    /// Create or upgrade the schema (PostgreSQL: run as the tables' owner).
    Migrate,
    /// Create a team.
    CreateTeam {
        #[arg(long)]
        name: String,
        #[arg(long)]
        district: String,
    },
    /// Create a staff member and their account. The password is read from standard input.
    CreateStaff {
        #[arg(long)]
        name: String,
        #[arg(long)]
        initials: String,
        /// caseworker, psychologist, health_visitor, educator, special_educator, leader
        #[arg(long)]
        profession: String,
        /// social_services or schools_daycare
        #[arg(long)]
        sector: String,
        #[arg(long)]
        username: String,
        /// Work phone or e-mail, shown to colleagues.
        #[arg(long)]
        contact: String,
    },
    /// Add a staff member to a team.
    AddMember {
        #[arg(long)]
        username: String,
        /// Team id or name.
        #[arg(long)]
        team: String,
    },
    /// Remove a staff member from a team.
    RemoveMember {
        #[arg(long)]
        username: String,
        #[arg(long)]
        team: String,
    },
    /// Issue a one-time device enrollment code.
    EnrollmentCode {
        #[arg(long)]
        username: String,
        /// Minutes the code is valid.
        #[arg(long, default_value_t = 15)]
        minutes: i64,
    },
    /// List devices (all, or one user's).
    Devices {
        #[arg(long)]
        username: Option<String>,
    },
    /// Revoke a device: it is told to wipe its data at its next contact.
    RevokeDevice {
        #[arg(long)]
        device: uuid::Uuid,
    },
    /// Purge deleted records of cases whose last change is older than the given days; devices
    /// that synced such a case before pull it again from the start.
    PurgeTombstones {
        #[arg(long, default_value_t = 90)]
        older_than_days: i64,
    },
    /// Check the audit log's hash chain.
    AuditVerify,
    /// Export the audit log for one person (the citizen's copy) or one case, as JSON lines.
    AuditExport {
        #[arg(long, conflicts_with = "case", required_unless_present = "case")]
        person: Option<uuid::Uuid>,
        #[arg(long)]
        case: Option<uuid::Uuid>,
    },
    /// Fill the database with the demo municipality; every staff member gets an account with
    /// the password read from standard input.
    Demo {
        #[arg(long, default_value_t = 300)]
        cases: usize,
        #[arg(long, default_value_t = 20)]
        notes_per_case: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let log_json = matches!(&cli.command, Command::Serve(s) if s.log_json);
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    } else {
        use std::io::IsTerminal;
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init();
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("feltkontor-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints a line of output; a closed pipe (`| head`) ends the output instead of panicking.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).context("writing to standard output")?;
    }};
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let url: DatabaseUrl = cli.database_url.parse().map_err(anyhow::Error::msg)?;
    let clock: Arc<dyn Clock> = match cli.test_clock_file {
        Some(f) => Arc::new(OffsetClock(f)),
        None => Arc::new(SystemClock),
    };
    match cli.command {
        Command::Serve(s) => serve(url, s, clock),
        Command::Admin(a) => admin_command(url, a, clock),
        Command::Openapi => {
            use utoipa::OpenApi;
            out!("{}", http::ApiDoc::openapi().to_pretty_json()?);
            Ok(())
        }
    }
}

fn admin_command(url: DatabaseUrl, cmd: Admin, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    if let Admin::Migrate = cmd {
        let n = url.migrate()?;
        out!("schema up to date ({n} migrations applied)");
        return Ok(());
    }
    if url.engine() == feltkontor_central::db::Engine::Sqlite {
        url.migrate()?;
    }
    let mut conn = url.connect()?;
    let conn = conn.as_mut();
    match cmd {
        Admin::Migrate => unreachable!("handled above"),
        Admin::CreateTeam { name, district } => {
            out!("{}", admin::create_team(conn, &name, &district)?);
        }
        Admin::CreateStaff {
            name,
            initials,
            profession,
            sector,
            username,
            contact,
        } => {
            let profession: Profession = profession.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let sector: StaffSector = sector.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let password = read_password()?;
            let id = admin::create_staff(
                conn,
                &admin::NewStaff {
                    name: &name,
                    initials: &initials,
                    profession,
                    sector,
                    username: &username,
                    password: &password,
                    contact: &contact,
                },
            )?;
            out!("{id}");
        }
        Admin::AddMember { username, team } => admin::add_member(conn, &username, &team)?,
        Admin::RemoveMember { username, team } => admin::remove_member(conn, &username, &team)?,
        Admin::EnrollmentCode { username, minutes } => {
            out!(
                "{}",
                admin::enrollment_code(conn, &username, minutes, clock.now_ms())?
            )
        }
        Admin::Devices { username } => {
            for d in admin::list_devices(conn, username.as_deref())? {
                out!("{}", serde_json::to_string(&d)?);
            }
        }
        Admin::RevokeDevice { device } => {
            admin::revoke_device(conn, device)?;
            out!("device {device} revoked: it will be told to wipe its data at its next contact");
        }
        Admin::PurgeTombstones { older_than_days } => {
            let n = admin::purge_tombstones(conn, older_than_days, clock.now_ms())?;
            out!("{n} deleted records purged");
        }
        Admin::AuditVerify => {
            let report = audit::verify(conn)?;
            match report.first_broken {
                None => out!("audit log intact: {} rows", report.rows),
                Some(seq) => bail!(
                    "audit log chain broken at row {seq} ({} rows before it are intact)",
                    report.rows
                ),
            }
        }
        Admin::AuditExport { person, case } => {
            let lines = match (person, case) {
                (Some(p), _) => admin::export_person(conn, p)?,
                (None, Some(c)) => admin::export_case(conn, c)?,
                (None, None) => bail!("give --person or --case"),
            };
            for l in lines {
                out!("{}", serde_json::to_string(&l)?);
            }
        }
        Admin::Demo {
            cases,
            notes_per_case,
            seed,
        } => {
            let password = read_password()?;
            let size = feltkontor_demo::DemoSize {
                cases,
                notes_per_case,
                ..feltkontor_demo::DemoSize::DEFAULT
            };
            let seeded = demo::seed(conn, &size, seed, &password)?;
            eprintln!(
                "{} records applied; {} accounts:",
                seeded.records,
                seeded.accounts.len()
            );
            for a in seeded.accounts {
                out!("{}\t{}\t{}\t{}", a.username, a.name, a.profession, a.team);
            }
        }
    }
    Ok(())
}

/// The runtime's blocking threads: every library call runs on one.
const BLOCKING_THREADS: usize = 256;

fn serve(url: DatabaseUrl, s: Serve, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let tls = match (&s.tls_cert, &s.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    if tls.is_none() && !s.listen.ip().is_loopback() && !s.behind_tls_proxy {
        bail!(
            "refusing to serve plain HTTP on {}: give --tls-cert and --tls-key, or --behind-tls-proxy if a TLS-terminating proxy stands in front",
            s.listen
        );
    }
    let listen_url = match &url {
        DatabaseUrl::Postgres(u) => Some(u.clone()),
        DatabaseUrl::Sqlite(_) => None,
    };
    let mut config = Config::new(url);
    config.clock = clock;
    config.pool_size = s.pool_size;
    config.device_requests = s.device_requests;
    config.pool_max_lifetime = Duration::from_secs(s.pool_max_lifetime.max(1));
    config.device_rate = (s.device_rate, s.device_rate * 4.0);
    config.account_rate = (s.account_rate, s.account_rate * 4.0);
    if !(s.lease_hours > 0.0 && s.lease_hours <= 24.0 * 365.0) {
        bail!("--lease-hours must be more than 0 and at most a year");
    }
    config.lease_ms = (s.lease_hours * 3_600_000.0) as i64;
    let central = Central::open(config)?;
    tracing::info!(engine = %central.engine(), "database open");
    let state = Arc::new(http::AppState {
        central,
        address_limiter: RateLimiter::new(s.address_rate, s.address_rate * 2.0),
        credential_limiter: RateLimiter::new(s.credential_rate, 10.0),
        request_timeout: Duration::from_secs(s.request_timeout.max(1)),
        live: Arc::new(live::LiveFeed::new()),
        streams: Arc::new(http::StreamGate::new(
            s.max_streams_per_device,
            s.max_streams,
        )),
        stream_send_timeout: Duration::from_secs(s.stream_send_timeout.max(1)),
        max_in_flight: BLOCKING_THREADS - 16,
    });
    if let Some(url) = listen_url {
        // Changes applied at any instance, heard on one connection of this one's own.
        let st = state.clone();
        std::thread::Builder::new()
            .name("live-updates".into())
            .spawn(move || loop {
                let result = feltkontor_central::live::listen(
                    &url,
                    || {
                        // Listening (again): plans are kept from now on, and what was sent
                        // while nobody listened is unknown, so every waiting device pulls.
                        st.central.keep_plans(true);
                        st.live
                            .publish(feltkontor_central::live::Touched::everyone());
                    },
                    |touched| {
                        st.central.heard(&touched);
                        st.live.publish(touched);
                    },
                );
                st.central.keep_plans(false);
                if let Err(e) = result {
                    tracing::warn!("live updates: {e}; listening again in a second");
                }
                std::thread::sleep(Duration::from_secs(1));
            })?;
    }
    // The last reference stays out here: PostgreSQL connections own a runtime of their own and
    // must not be dropped inside this one.
    let app = http::router(state.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()?;
    let live = state.clone();
    let result = runtime.block_on(async move {
        let grace = Duration::from_secs(s.shutdown_grace);
        let acceptor = match &tls {
            Some((cert, key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                Some(listen::tls_acceptor(cert, key)?)
            }
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(s.listen)
            .await
            .with_context(|| format!("cannot listen on {}", s.listen))?;
        tracing::info!(addr = %listener.local_addr()?, tls = acceptor.is_some(), "listening");
        let st = live.clone();
        let shutdown = async move {
            shutdown_signal().await;
            // Live-update requests answer now instead of holding the shutdown.
            st.live.close();
        };
        listen::serve(
            listener,
            app,
            acceptor,
            listen::Limits {
                max_connections: s.max_connections,
                header_timeout: Duration::from_secs(s.header_timeout.max(1)),
                write_timeout: Duration::from_secs(s.stream_send_timeout.max(1)),
                trusted_proxies: proxy::TrustedProxies::new(s.trusted_proxies.clone()),
                max_connections_per_address: s.max_connections_per_address,
            },
            shutdown,
            grace,
        )
        .await
        .context("serving")?;
        anyhow::Ok(())
    });
    drop(runtime);
    drop(state);
    tracing::info!("stopped");
    result
}

/// An address (`10.0.0.7`, a /32 or /128) or a range (`10.20.0.0/16`).
fn parse_range(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or a range such as 10.20.0.0/16"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
