//! The service's windows at their boundaries, on the real binary with its clock moved
//! (`--test-clock-file`): enrollment codes, access tokens, leases, the login throttle and the
//! retry of a refresh whose answer was lost.

mod common;

use common::{world, Db, Kind, Server, PASSWORD};
use serde_json::{json, Value};

const MIN: i64 = 60_000;

struct Clock(std::path::PathBuf);

impl Clock {
    /// Moves the service's time to `ms` after the machine's.
    fn set(&self, ms: i64) {
        std::fs::write(&self.0, ms.to_string()).unwrap();
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

fn code(db: &Db, clock: &Clock, username: &str) -> String {
    db.admin(
        &[
            "enrollment-code",
            "--username",
            username,
            "--test-clock-file",
            clock.arg(),
        ],
        None,
    )
    .success()
    .stdout
    .trim()
    .to_owned()
}

fn enroll(server: &Server, code: &str, username: &str, password: &str) -> common::Resp {
    server.client().post(
        "/v1/enroll",
        &json!({"code": code, "username": username, "password": password, "device_name": "Ur"}),
    )
}

fn refresh(server: &Server, token: &str) -> common::Resp {
    server
        .client()
        .post("/v1/token", &json!({"refresh_token": token}))
}

fn ms_of(rfc3339: &Value) -> i64 {
    let t = time::OffsetDateTime::parse(
        rfc3339.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn windows_hold_at_their_boundaries(kind: Kind) {
    let db = Db::migrated(kind);
    world::build(&db);
    let clock = Clock(db.dir().join("clock"));
    clock.set(0);
    let server = Server::start(
        &db,
        &["--test-clock-file", clock.arg(), "--address-rate", "1000"],
    );

    // An enrollment code lives 15 minutes.
    let a = code(&db, &clock, "coord");
    clock.set(15 * MIN - 3_000);
    let enrolled = enroll(&server, &a, "coord", PASSWORD);
    assert_eq!(enrolled.status, 200, "just inside: {:?}", enrolled.body);
    clock.set(0);
    let b = code(&db, &clock, "coord");
    clock.set(15 * MIN + 3_000);
    let late = enroll(&server, &b, "coord", PASSWORD);
    assert_eq!((late.status, late.code()), (401, "enrollment_failed"));

    // The lease runs 72 hours from the service's now.
    let at = 15 * MIN - 3_000;
    let now = feltkontor_central::now_ms() + at;
    let lease = ms_of(&enrolled.body["lease_expires_at"]);
    assert!(
        (lease - (now + 72 * 60 * MIN)).abs() < 5_000,
        "{lease} vs {now}"
    );

    // An access token lives 10 minutes.
    let token = common::token(&enrolled.body);
    clock.set(at + 10 * MIN - 3_000);
    assert_eq!(server.client().get("/v1/whoami", Some(&token)).status, 200);
    clock.set(at + 10 * MIN + 1_000);
    let expired = server.client().get("/v1/whoami", Some(&token));
    assert_eq!((expired.status, expired.code()), (401, "token_expired"));

    // A refresh whose answer was lost may be retried with the same token for 60 seconds…
    let r1 = enrolled.body["refresh_token"].as_str().unwrap().to_owned();
    let t = at + 11 * MIN;
    clock.set(t);
    assert_eq!(refresh(&server, &r1).status, 200);
    clock.set(t + 57_000);
    let retried = refresh(&server, &r1);
    assert_eq!(
        retried.status, 200,
        "inside the retry window: {:?}",
        retried.body
    );
    // …and not after: a second device, the same steps a minute and more apart.
    clock.set(0);
    let c = code(&db, &clock, "teamcw");
    let other = enroll(&server, &c, "teamcw", PASSWORD);
    assert_eq!(other.status, 200, "{:?}", other.body);
    let s1 = other.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&server, &s1).status, 200);
    clock.set(63_000);
    let replayed = refresh(&server, &s1);
    assert_eq!((replayed.status, replayed.code()), (401, "session_revoked"));

    // The sixth failed sign-in locks the user name for 30 seconds.
    clock.set(0);
    let d = code(&db, &clock, "psy");
    for _ in 0..6 {
        let r = enroll(&server, &d, "psy", "forkert kodeord");
        assert_eq!(r.code(), "enrollment_failed", "{:?}", r.body);
    }
    clock.set(27_000);
    let locked = enroll(&server, &d, "psy", PASSWORD);
    assert_eq!((locked.status, locked.code()), (429, "login_throttled"));
    clock.set(33_000);
    let open = enroll(&server, &d, "psy", PASSWORD);
    assert_eq!(open.status, 200, "after the lock: {:?}", open.body);
}
backends!(windows_hold_at_their_boundaries);
