//! The PostgreSQL connection is encrypted and checked, and the pool hands out only live
//! connections. A PostgreSQL cluster of the test's own on loopback, configured for TLS with a
//! test CA and refusing every connection without TLS; the real server binary against it.

mod common;

use common::{run, Db, Kind, Server};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory of PostgreSQL's server programs (initdb, pg_ctl) on Debian.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs in /usr/lib/postgresql")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("initdb in /usr/lib/postgresql/*/bin")
}

/// PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user.
fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn running_as_root() -> bool {
    let mut id = Command::new("id");
    id.arg("-u");
    run(id, None).stdout.trim() == "0"
}

fn openssl(dir: &Path, args: &[&str]) {
    let mut c = Command::new("openssl");
    c.current_dir(dir).args(args);
    run(c, None).success();
}

/// A CA, and a server certificate it signed for `localhost` only.
fn certificates(dir: &Path, ca: &str, server: Option<&str>) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=Feltkontor test CA {ca}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ],
    );
    let Some(server) = server else { return };
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &format!("{server}.key"),
            "-out",
            &format!("{server}.csr"),
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{server}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            &format!("{server}.pem"),
        ],
    );
}

/// A cluster on a free loopback port that accepts only TLS connections.
struct TlsCluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
}

impl TlsCluster {
    fn start() -> TlsCluster {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        certificates(root, "ca", Some("server"));
        certificates(root, "other-ca", None);
        let data = root.join("data");
        if running_as_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(root);
            run(chown, None).success();
        }
        std::fs::set_permissions(
            root.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let bin = pg_bin();
        let mut init = as_postgres(&bin.join("initdb"));
        init.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        run(init, None).success();
        let port = common::free_port();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
            root.display(),
            root.join("server.pem").display(),
            root.join("server.key").display(),
        );
        let mut pg_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pg_conf.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), pg_conf).unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
        )
        .unwrap();
        let mut start = as_postgres(&bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(root.join("postgres.log"))
            .args(["-w", "-t", "60", "start"]);
        run(start, None).success();
        TlsCluster { dir, data, port }
    }

    fn url(&self, user: &str, host: &str, query: &str) -> String {
        format!("postgres://{user}@{host}:{}/postgres?{query}", self.port)
    }

    fn ca(&self, name: &str) -> String {
        self.dir
            .path()
            .join(format!("{name}.pem"))
            .display()
            .to_string()
    }

    fn admin(&self, url: &str, args: &[&str]) -> common::Output {
        let mut c = Command::new(common::BIN);
        c.arg("--database-url").arg(url).arg("admin").args(args);
        run(c, None)
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let mut stop = as_postgres(&pg_bin().join("pg_ctl"));
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"]);
        let _ = run(stop, None);
    }
}

/// Three requests in a row are answered: none meets a connection the database ended.
fn served_after_the_database_ended_every_connection(client: &common::Client, token: &str) {
    for _ in 0..3 {
        let r = client.get("/v1/cases", Some(token));
        assert_eq!(
            r.status, 200,
            "after the connections were closed: {:?}",
            r.body
        );
    }
}

#[test]
fn the_database_is_reached_over_verified_tls_only() {
    common::tls_provider();
    let cluster = TlsCluster::start();
    let verified = format!("sslmode=verify-full&sslrootcert={}", cluster.ca("ca"));

    // The cluster refuses plain connections: what works below works over TLS.
    let plain = cluster.admin(
        &cluster.url("postgres", "localhost", "sslmode=disable"),
        &["migrate"],
    );
    assert!(!plain.status.success());
    assert!(
        plain.stderr.contains("no encryption") || plain.stderr.contains("rejects connection"),
        "{}",
        plain.stderr
    );

    // A certificate from another CA: refused, and the cause named (`require` is verified as
    // strictly as `verify-full`).
    for mode in ["verify-full", "require"] {
        let other = cluster.admin(
            &cluster.url(
                "postgres",
                "localhost",
                &format!("sslmode={mode}&sslrootcert={}", cluster.ca("other-ca")),
            ),
            &["migrate"],
        );
        assert!(!other.status.success(), "{mode}");
        assert!(
            other.stderr.contains("cannot connect to PostgreSQL")
                && other.stderr.contains("UnknownIssuer"),
            "{mode}: {}",
            other.stderr
        );
    }

    // The right CA, but a host name the certificate was not made for.
    let wrong_name = cluster.admin(
        &cluster.url("postgres", "127.0.0.1", &verified),
        &["migrate"],
    );
    assert!(!wrong_name.status.success());
    assert!(
        wrong_name.stderr.contains("not valid for name"),
        "{}",
        wrong_name.stderr
    );

    // The right CA and name: migrated, and the service serves over TLS as its own role.
    cluster
        .admin(
            &cluster.url("postgres", "localhost", &verified),
            &["migrate"],
        )
        .success();
    let db = Db::at(
        Kind::Postgres,
        cluster.url("postgres", "localhost", &verified),
        cluster.url("feltkontor_app", "localhost", &verified),
    );
    let w = common::world::build(&db);
    let server = Server::start(&db, &["--pool-max-lifetime", "2"]);
    let client = server.client();
    assert_eq!(client.get("/ready", None).status, 200);
    let enrolled = client.enroll(&db, "coord");
    let token = common::token(&enrolled);
    let cases = client.get("/v1/cases", Some(&token));
    assert_eq!(cases.status, 200, "{:?}", cases.body);
    assert!(cases.body.to_string().contains(&w.case1.to_string()));

    // Every connection of the service's role is encrypted.
    let mut owner = postgres::Config::new();
    owner
        .host(cluster.dir.path().to_str().unwrap())
        .port(cluster.port)
        .user("postgres")
        .dbname("postgres");
    let mut owner = owner.connect(postgres::NoTls).unwrap();
    let app_backends = |owner: &mut postgres::Client| -> Vec<(i32, bool)> {
        owner
            .query(
                "SELECT a.pid, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'feltkontor_app'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let backends = app_backends(&mut owner);
    assert!(!backends.is_empty());
    assert!(backends.iter().all(|(_, ssl)| *ssl), "{backends:?}");

    // The database ends every connection of the service (a restart, a failover, a proxy's idle
    // timeout): the next request gets a live connection, not an error.
    owner
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'feltkontor_app'",
            &[],
        )
        .unwrap();
    served_after_the_database_ended_every_connection(&client, &token);

    // Connections are used for their lifetime (2 s here) and then replaced.
    let before: Vec<i32> = app_backends(&mut owner).iter().map(|b| b.0).collect();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    for _ in 0..3 {
        assert_eq!(client.get("/v1/cases", Some(&token)).status, 200);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after: Vec<i32> = app_backends(&mut owner).iter().map(|b| b.0).collect();
    assert!(
        before.iter().all(|pid| !after.contains(pid)),
        "connections older than their lifetime were replaced: before {before:?}, after {after:?}"
    );
}

/// On the shared local PostgreSQL (no TLS): a connection the database closed while it sat in
/// the pool is never handed to a request.
#[test]
fn a_connection_the_database_closed_is_not_handed_out() {
    common::tls_provider();
    let db = Db::migrated(Kind::Postgres);
    let _w = common::world::build(&db);
    let server = Server::start(&db, &[]);
    let client = server.client();
    let token = common::token(&client.enroll(&db, "coord"));
    assert_eq!(client.get("/v1/cases", Some(&token)).status, 200);
    let mut owner = db.owner();
    let dbname = db.owner_url.rsplit('/').next().unwrap().to_owned();
    owner
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'feltkontor_app' AND datname = $1",
            feltkontor_central::params![dbname],
        )
        .unwrap();
    served_after_the_database_ended_every_connection(&client, &token);
}
