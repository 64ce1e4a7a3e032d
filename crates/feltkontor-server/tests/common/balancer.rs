//! HAProxy on loopback (Debian's package, installed by `scripts/install-deps.sh`) in front of
//! one or more instances of the service, as the municipality runs it: `option forwardfor`,
//! round robin, health checks on `/ready` (the database answers, the instance is not saturated), a request whose connection to an instance failed is
//! sent to another (`retries`, `option redispatch`; only before anything was sent).

use super::free_port;
use super::log_dir;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Balancer {
    child: Child,
    pub port: u16,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Balancer {
    pub fn start(backends: &[SocketAddr]) -> Balancer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // Waits are held up to a minute: the timeouts stay above it.
        let mut config = format!(
            "global\n  maxconn 8192\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 90s\n  timeout server 90s\n  option forwardfor\n  retries 3\n  option redispatch\nfrontend feltkontor\n  bind 127.0.0.1:{port}\n  default_backend service\nbackend service\n  balance roundrobin\n  option httpchk GET /ready\n  default-server inter 250ms fall 2 rise 2\n"
        );
        for (i, b) in backends.iter().enumerate() {
            writeln!(config, "  server s{i} {b} check").unwrap();
        }
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(log_dir().join(format!("haproxy-{port}.log"))).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("haproxy (scripts/install-deps.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Balancer {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
