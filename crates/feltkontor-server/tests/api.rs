//! The central service's behaviour, over HTTP against the real binary, on SQLite and on
//! PostgreSQL: every test here runs on both (`backends!`).

mod common;

use common::world::{self, World};
use common::*;
use serde_json::{json, Value};

fn overview(c: &Client, token: &str, case: uuid::Uuid) -> Resp {
    c.get(&format!("/v1/cases/{case}"), Some(token))
}

fn note_ids(r: &Resp) -> Vec<String> {
    r.body["details"]["latest_notes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| n["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn address_of(r: &Resp, person: uuid::Uuid) -> Value {
    r.body["details"]["persons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == person.to_string())
        .map(|p| p["address"].clone())
        .unwrap()
}

/// Every endpoint × role × in scope / out of scope / consent withdrawn / device revoked.
fn authorization_matrix(kind: Kind) {
    let db = Db::migrated(kind);
    let w: World = world::build(&db);
    let server = Server::start(&db, &[]);
    let c = server.client();
    let tok: std::collections::BTreeMap<&str, String> = w
        .staff
        .keys()
        .map(|u| (*u, token(&c.enroll(&db, u))))
        .collect();
    let (n_team, n_own, n_draft) = (
        w.note_team.to_string(),
        w.note_own.to_string(),
        w.note_draft.to_string(),
    );

    // role, access, sees protected address, reads: team note, own-discipline note, coordinator's draft
    type Row = (&'static str, Option<&'static str>, bool, bool, bool, bool);
    let expectations: &[Row] = &[
        ("coord", Some("full"), true, true, false, true),
        ("teamcw", Some("full"), false, true, false, false),
        ("psy", Some("full"), true, true, true, false),
        ("psyteam", Some("full"), false, true, false, false),
        ("hvlegal", Some("full"), true, true, false, false),
        ("hv", Some("limited"), false, false, false, false),
        ("edu", Some("limited"), false, false, false, false),
        ("outsider", None, false, false, false, false),
    ];
    for &(user, access, protected, team_note, own_note, draft) in expectations {
        let t = &tok[user];
        let r = overview(&c, t, w.case1);
        let listed = c.get("/v1/cases", Some(t));
        assert_eq!(listed.status, 200, "{user}");
        let in_list = listed.body["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == w.case1.to_string())
            .cloned();
        match access {
            None => {
                assert_eq!(
                    r.status, 404,
                    "{user}: out of scope must look like no such case: {:?}",
                    r.body
                );
                assert_eq!(r.code(), "not_found");
                assert!(in_list.is_none(), "{user} must not see case 1 listed");
            }
            Some(level) => {
                assert_eq!(r.status, 200, "{user}: {:?}", r.body);
                assert_eq!(r.body["access"], level, "{user}");
                assert_eq!(
                    in_list.as_ref().unwrap()["access"],
                    level,
                    "{user} in the list"
                );
                assert_eq!(
                    r.body["coordinator"]["name"], "Karen Koordinator",
                    "{user} always sees the coordinator"
                );
                assert_eq!(
                    r.body["coordinator"]["contact"], "coord@aarhus.dk",
                    "{user} sees how to reach them"
                );
                if level == "limited" {
                    assert!(
                        r.body["details"].is_null(),
                        "{user}: limited access shows no content"
                    );
                    let text = r.body.to_string();
                    for secret in [
                        world::CPR,
                        world::TEAM_NOTE,
                        world::OPEN_ADDRESS,
                        world::PROTECTED_ADDRESS,
                        world::CHILD_WORDS,
                    ] {
                        assert!(
                            !text.contains(secret),
                            "{user}: limited access leaked content"
                        );
                    }
                    continue;
                }
                let ids = note_ids(&r);
                assert_eq!(ids.contains(&n_team), team_note, "{user}: team note");
                assert_eq!(
                    ids.contains(&n_own),
                    own_note,
                    "{user}: own-discipline note"
                );
                assert_eq!(
                    ids.contains(&n_draft),
                    draft,
                    "{user}: the coordinator's draft"
                );
                let mother = address_of(&r, w.mother);
                if protected {
                    assert_eq!(mother, world::PROTECTED_ADDRESS, "{user} is a participant");
                } else {
                    assert!(
                        mother.is_null(),
                        "{user} must not see the protected address"
                    );
                }
                assert_eq!(
                    address_of(&r, w.father),
                    world::OPEN_ADDRESS,
                    "{user}: an open address is shown"
                );
            }
        }
        // Case 2 belongs to another team: only its coordinator sees it.
        let r2 = overview(&c, t, w.case2);
        assert_eq!(
            r2.status,
            if user == "outsider" { 200 } else { 404 },
            "{user} on case 2"
        );
    }

    // Consent withdrawn: the psychologist drops to limited access at once.
    world::withdraw_ppr_consent(&db, &w);
    let r = overview(&c, &tok["psy"], w.case1);
    assert_eq!(r.body["access"], "limited", "consent withdrawn");
    assert!(r.body["details"].is_null());

    // Device revoked: every endpoint tells the device to wipe.
    let second = c.enroll(&db, "coord");
    let device = second["device_id"].as_str().unwrap();
    db.admin(&["revoke-device", "--device", device], None)
        .success();
    let t2 = token(&second);
    for path in [
        "/v1/whoami".to_owned(),
        "/v1/cases".to_owned(),
        format!("/v1/cases/{}", w.case1),
    ] {
        let r = c.get(&path, Some(&t2));
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.code(), "device_revoked", "{path}");
        assert_eq!(r.body["wipe"], true, "{path}");
    }
    let r = c.post(
        "/v1/token",
        &json!({"refresh_token": second["refresh_token"]}),
    );
    assert_eq!(r.code(), "device_revoked");
    // The coordinator's other device is untouched.
    assert_eq!(c.get("/v1/whoami", Some(&tok["coord"])).status, 200);

    // No token, or garbage: 401 everywhere.
    for path in [
        "/v1/whoami".to_owned(),
        "/v1/cases".to_owned(),
        format!("/v1/cases/{}", w.case1),
    ] {
        assert_eq!(c.get(&path, None).status, 401);
        assert_eq!(c.get(&path, Some("not-a-token")).code(), "unauthenticated");
    }

    // Every read is in the audit log, including the refusals, and the chain holds.
    let mut owner = db.owner();
    let rows = feltkontor_central::audit::for_case(owner.as_mut(), w.case1).unwrap();
    let coord = w.staff["coord"];
    assert!(rows
        .iter()
        .any(|r| r.staff_id == Some(coord) && r.action == "read_case" && r.result == "ok"));
    assert!(rows
        .iter()
        .any(|r| r.staff_id == Some(w.staff["outsider"]) && r.result == "denied"));
    assert!(rows
        .iter()
        .any(|r| r.staff_id == Some(w.staff["hv"]) && r.result == "limited"));
    let out = db.admin(&["audit-verify"], None).success();
    assert!(out.stdout.contains("audit log intact"), "{}", out.stdout);
    let export = db
        .admin(&["audit-export", "--person", &w.mother.to_string()], None)
        .success()
        .stdout;
    assert!(
        export.contains("Karen Koordinator"),
        "the mother's copy names who read her case"
    );
    assert!(export.contains("Sagens overblik blev åbnet"));
    assert!(
        !export.contains("Ole Udenfor"),
        "a refused read showed her nothing"
    );

    // The server's own log holds no personal data.
    let log = server.log_text();
    assert!(log.contains("/v1/cases"), "the log was written");
    for secret in [
        world::CPR,
        world::TEAM_NOTE,
        world::OWN_NOTE,
        world::DRAFT_NOTE,
        world::CHILD_WORDS,
        world::PROTECTED_ADDRESS,
        world::OPEN_ADDRESS,
        PASSWORD,
    ] {
        assert!(
            !log.contains(secret),
            "the server log contains personal data"
        );
    }
}
backends!(authorization_matrix);

fn enrollment_and_token_rotation(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let c = server.client();
    let first = c.enroll(&db, "coord");
    assert_eq!(first["token_type"], "Bearer");
    assert!(first["expires_in"].as_i64().unwrap() <= 15 * 60);
    let me = c.get("/v1/whoami", Some(&token(&first)));
    assert_eq!(me.status, 200);
    assert_eq!(me.body["staff"]["id"], w.staff["coord"].to_string());
    assert_eq!(me.body["teams"][0]["name"], "Team Gellerup");
    assert_eq!(me.body["device"]["name"], "Testmaskine");

    // Rotation: each refresh gives a new refresh token and spends the old one.
    let r1 = c.post(
        "/v1/token",
        &json!({"refresh_token": first["refresh_token"]}),
    );
    assert_eq!(r1.status, 200, "{:?}", r1.body);
    assert_ne!(r1.body["refresh_token"], first["refresh_token"]);
    let r2 = c.post(
        "/v1/token",
        &json!({"refresh_token": r1.body["refresh_token"]}),
    );
    assert_eq!(r2.status, 200);
    assert_eq!(c.get("/v1/whoami", Some(&token(&r2.body))).status, 200);

    // Replay of a spent refresh token revokes the whole family: the newest refresh and
    // access tokens die with it.
    let replay = c.post(
        "/v1/token",
        &json!({"refresh_token": first["refresh_token"]}),
    );
    assert_eq!(replay.status, 401);
    assert_eq!(replay.code(), "session_revoked");
    assert_eq!(
        c.get("/v1/whoami", Some(&token(&r2.body))).code(),
        "session_revoked"
    );
    assert_eq!(
        c.post(
            "/v1/token",
            &json!({"refresh_token": r2.body["refresh_token"]})
        )
        .code(),
        "session_revoked"
    );
    let mut owner = db.owner();
    let report = feltkontor_central::audit::verify(owner.as_mut()).unwrap();
    assert_eq!(report.first_broken, None);

    // A refresh whose answer was lost on the network is retried with the same token: it works
    // (the successor nobody received is spent in its place), and presenting that lost
    // successor later is a replay.
    let again = c.enroll(&db, "coord");
    let lost = c.post(
        "/v1/token",
        &json!({"refresh_token": again["refresh_token"]}),
    );
    assert_eq!(lost.status, 200);
    let retry = c.post(
        "/v1/token",
        &json!({"refresh_token": again["refresh_token"]}),
    );
    assert_eq!(retry.status, 200, "{:?}", retry.body);
    assert_ne!(retry.body["refresh_token"], lost.body["refresh_token"]);
    assert_eq!(c.get("/v1/whoami", Some(&token(&retry.body))).status, 200);
    let next = c.post(
        "/v1/token",
        &json!({"refresh_token": retry.body["refresh_token"]}),
    );
    assert_eq!(next.status, 200);
    // Once the retried token's successor was used, the old token is a plain replay.
    assert_eq!(
        c.post(
            "/v1/token",
            &json!({"refresh_token": again["refresh_token"]})
        )
        .code(),
        "session_revoked"
    );
    assert_eq!(
        c.post(
            "/v1/token",
            &json!({"refresh_token": lost.body["refresh_token"]})
        )
        .code(),
        "session_revoked"
    );

    // Unknown refresh token.
    assert_eq!(
        c.post("/v1/token", &json!({"refresh_token": "rt_nope"}))
            .code(),
        "invalid_refresh_token"
    );

    // A code is single-use and bound to its account.
    let code = db
        .admin(&["enrollment-code", "--username", "teamcw"], None)
        .success()
        .stdout;
    let body = json!({"code": code.trim(), "username": "teamcw", "password": PASSWORD, "device_name": "A"});
    assert_eq!(c.post("/v1/enroll", &body).status, 200);
    assert_eq!(
        c.post("/v1/enroll", &body).code(),
        "enrollment_failed",
        "a used code"
    );
    let other = db
        .admin(&["enrollment-code", "--username", "psy"], None)
        .success()
        .stdout;
    let r = c.post("/v1/enroll", &json!({"code": other.trim(), "username": "teamcw", "password": PASSWORD, "device_name": "A"}));
    assert_eq!(r.code(), "enrollment_failed", "another account's code");
    // An expired code (issued valid for one minute, then aged in the database).
    let old = db
        .admin(
            &["enrollment-code", "--username", "hv", "--minutes", "1"],
            None,
        )
        .success()
        .stdout;
    owner
        .execute(
            "UPDATE enrollment_codes SET expires_at = 0 WHERE used_at IS NULL",
            &[],
        )
        .unwrap();
    let r = c.post(
        "/v1/enroll",
        &json!({"code": old.trim(), "username": "hv", "password": PASSWORD, "device_name": "A"}),
    );
    assert_eq!(r.code(), "enrollment_failed", "an expired code");

    // Wrong passwords: five free failures, then throttled with Retry-After; every one audited.
    let code = db
        .admin(&["enrollment-code", "--username", "edu"], None)
        .success()
        .stdout;
    for i in 0..5 {
        let r = c.post("/v1/enroll", &json!({"code": code.trim(), "username": "edu", "password": "forkert-kodeord-igen", "device_name": "A"}));
        assert_eq!(r.code(), "enrollment_failed", "attempt {i}");
    }
    let r = c.post("/v1/enroll", &json!({"code": code.trim(), "username": "edu", "password": "forkert-kodeord-igen", "device_name": "A"}));
    assert_eq!(
        r.code(),
        "enrollment_failed",
        "the sixth failure starts the lock"
    );
    let r = c.post(
        "/v1/enroll",
        &json!({"code": code.trim(), "username": "edu", "password": PASSWORD, "device_name": "A"}),
    );
    assert_eq!(r.status, 429, "even the right password waits: {:?}", r.body);
    assert_eq!(r.code(), "login_throttled");
    assert!(r.headers.get("retry-after").is_some());
    let failures = owner
        .query(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'enroll' AND result = 'failed'",
            &[],
        )
        .unwrap()[0]
        .int(0)
        .unwrap();
    assert!(failures >= 9, "failed enrollments are audited: {failures}");
    assert!(
        server.log_text().contains("failed enrollment"),
        "and logged"
    );
}
backends!(enrollment_and_token_rotation);

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    use base64::Engine;
    feltkontor_central::jwt_crypto::install();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let key = jsonwebtoken::EncodingKey::from_secret(secret).unwrap();
    let sig = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{signing_input}.{sig}")
}

/// Tokens that must all be refused: expired, wrong audience, wrong issuer, `alg: none`,
/// another algorithm, a signature by another key, a tampered payload.
fn forged_tokens(kind: Kind) {
    feltkontor_central::jwt_crypto::install();
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let c = server.client();
    let enrolled = c.enroll(&db, "coord");
    let mut owner = db.owner();
    let secret = owner
        .query(
            "SELECT value FROM server_secrets WHERE name = 'jwt_hs256'",
            &[],
        )
        .unwrap()[0]
        .bytes(0)
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": "feltkontor-central", "aud": "feltkontor-desktop",
        "sub": w.staff["coord"], "did": enrolled["device_id"], "gen": 1, "iat": now, "exp": now + 300
    });
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let good = hs256(&secret, &header, &claims);
    assert_eq!(
        c.get("/v1/whoami", Some(&good)).status,
        200,
        "the harness mints valid tokens"
    );

    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let expired = hs256(&secret, &header, &with("exp", json!(now - 1)));
    let r = c.get("/v1/whoami", Some(&expired));
    assert_eq!((r.status, r.code()), (401, "token_expired"));
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = |h: Value, c: &Value| {
        format!(
            "{}.{}.",
            b64.encode(h.to_string()),
            b64.encode(c.to_string())
        )
    };
    let mut other_key = secret.clone();
    other_key[0] ^= 1;
    let mut tampered_parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    tampered_parts[1] = b64.encode(with("sub", json!(w.staff["outsider"])).to_string());
    let bad = [
        (
            "wrong audience",
            hs256(&secret, &header, &with("aud", json!("someone-else"))),
        ),
        (
            "wrong issuer",
            hs256(&secret, &header, &with("iss", json!("evil"))),
        ),
        (
            "alg none",
            unsigned(json!({"alg": "none", "typ": "JWT"}), &claims),
        ),
        ("alg None", unsigned(json!({"alg": "None"}), &claims)),
        ("HS512", {
            let input = format!(
                "{}.{}",
                b64.encode(json!({"alg":"HS512"}).to_string()),
                b64.encode(claims.to_string())
            );
            let sig = jsonwebtoken::crypto::sign(
                input.as_bytes(),
                &jsonwebtoken::EncodingKey::from_secret(&secret).unwrap(),
                jsonwebtoken::Algorithm::HS512,
            )
            .unwrap();
            format!("{input}.{sig}")
        }),
        // Algorithm confusion: an RS256 header with an HMAC signature over the shared secret.
        ("RS256 header", {
            let input = format!(
                "{}.{}",
                b64.encode(json!({"alg":"RS256"}).to_string()),
                b64.encode(claims.to_string())
            );
            let sig = jsonwebtoken::crypto::sign(
                input.as_bytes(),
                &jsonwebtoken::EncodingKey::from_secret(&secret).unwrap(),
                jsonwebtoken::Algorithm::HS256,
            )
            .unwrap();
            format!("{input}.{sig}")
        }),
        ("another key", hs256(&other_key, &header, &claims)),
        ("tampered payload", tampered_parts.join(".")),
        (
            "no expiry",
            hs256(&secret, &header, &{
                let mut c = claims.clone();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
        ),
        (
            "other generation",
            hs256(&secret, &header, &with("gen", json!(2))),
        ),
        (
            "other worker on this device",
            hs256(&secret, &header, &with("sub", json!(w.staff["outsider"]))),
        ),
    ];
    for (what, t) in bad {
        let r = c.get("/v1/whoami", Some(&t));
        assert_eq!(r.status, 401, "{what}: {:?}", r.body);
    }
}
backends!(forged_tokens);

/// Body size, malformed and unknown input, unknown routes, per-device rate limits: each a
/// clear problem response, never a 5xx.
fn limits_and_bad_input(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &["--device-rate", "2", "--address-rate", "1000"]);
    let c = server.client();
    let big = vec![b' '; 70 * 1024];
    let r = c.post_raw("/v1/enroll", big);
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let r = c.post_raw("/v1/enroll", b"{not json".to_vec());
    assert_eq!((r.status, r.code()), (400, "invalid_input"));
    let r = c.post("/v1/enroll", &json!({"code": "AAAA-AAAA", "username": "coord", "password": "x", "device_name": "A", "admin": true}));
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_input"),
        "unknown fields are refused"
    );
    let r = c.post(
        "/v1/enroll",
        &json!({"code": "AAAA", "username": "coord", "password": "x", "device_name": "A"}),
    );
    assert_eq!(r.body["field"], "code");
    let r = c.post("/v1/enroll", &json!({"code": "AAAA-AAAA", "username": "coord", "password": "x", "device_name": "bad\u{0007}name"}));
    assert_eq!(r.body["field"], "device_name");
    assert_eq!(c.get("/v1/nowhere", None).status, 404);
    let t = token(&c.enroll(&db, "coord"));
    assert_eq!(
        c.get("/v1/cases/not-a-uuid", Some(&t)).code(),
        "invalid_input"
    );
    // Rate 2/s, burst 8: a quick run of requests meets 429 with Retry-After.
    let mut limited = None;
    for _ in 0..30 {
        let r = c.get(&format!("/v1/cases/{}", w.case1), Some(&t));
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the device's rate limit applies");
    assert_eq!(r.code(), "rate_limited");
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(!server.log_text().contains(" 500 "), "no server errors");
}
backends!(limits_and_bad_input);

fn health_readiness_and_graceful_shutdown(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    // Ten reads of one device at once (more than a device runs at once in the app).
    let mut server = Server::start(&db, &["--device-requests", "64"]);
    let c = server.client();
    assert_eq!(c.get("/health", None).body["status"], "ok");
    assert_eq!(c.get("/ready", None).status, 200);
    let t = token(&c.enroll(&db, "coord"));
    // Hold the lock the reads' audit rows need, so that the reads are in flight for certain
    // when SIGTERM arrives.
    let mut blocker = db.owner();
    blocker.begin().unwrap();
    if kind == Kind::Postgres {
        blocker
            .batch("LOCK TABLE audit_head IN ACCESS EXCLUSIVE MODE")
            .unwrap();
    }
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let (c, t, case) = (c.clone(), t.clone(), w.case1);
            std::thread::spawn(move || c.get(&format!("/v1/cases/{case}"), Some(&t)).status)
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server waits for its requests in flight"
    );
    blocker.rollback().unwrap();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200, "a request in flight was answered");
    }
    let status = server.child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    assert!(server.log_text().contains("finishing requests in flight"));
}
backends!(health_readiness_and_graceful_shutdown);

#[test]
fn refuses_plain_http_on_a_public_address() {
    let db = Db::migrated(Kind::Sqlite);
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "--database-url",
        &db.app_url,
        "serve",
        "--listen",
        "0.0.0.0:0",
    ]);
    let out = run(cmd, None);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("refusing to serve plain HTTP"),
        "{}",
        out.stderr
    );
}

#[test]
fn openapi_document_is_served_and_matches_the_committed_snapshot() {
    let db = Db::migrated(Kind::Sqlite);
    let server = Server::start(&db, &[]);
    let served = server.client().get("/v1/openapi.json", None).body;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("FELTKONTOR_WRITE_OPENAPI").is_some() {
        std::fs::write(path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == pretty,
        "the API changed: review it, then run `make openapi` to update {path}"
    );
    for p in [
        "/v1/enroll",
        "/v1/token",
        "/v1/whoami",
        "/v1/cases",
        "/v1/cases/{case_id}",
    ] {
        assert!(served["paths"][p].is_object(), "{p} documented");
    }
}

/// Row-level security on PostgreSQL, queried directly as the service's role.
#[test]
fn postgres_row_level_security_is_a_second_line() {
    let db = Db::migrated(Kind::Postgres);
    let w = world::build(&db);
    let mut app = postgres::Client::connect(&db.app_url, postgres::NoTls).unwrap();
    let role = app
        .query_one(
            "SELECT rolsuper, rolbypassrls, (SELECT tableowner FROM pg_tables WHERE tablename = 'records') = current_user FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .unwrap();
    assert!(
        !role.get::<_, bool>(0) && !role.get::<_, bool>(1) && !role.get::<_, bool>(2),
        "no superuser, no BYPASSRLS, not the owner"
    );
    for t in [
        "records",
        "case_index",
        "members_index",
        "participant_index",
        "case_history",
    ] {
        let forced: bool = app
            .query_one(
                "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relname = $1",
                &[&t],
            )
            .unwrap()
            .get(0);
        assert!(forced, "{t} has FORCE ROW LEVEL SECURITY");
    }
    let case_rows = |app: &mut postgres::Client, worker: Option<uuid::Uuid>| -> (i64, i64, i64) {
        let mut tx = app.transaction().unwrap();
        if let Some(w) = worker {
            tx.execute(
                "SELECT set_config('feltkontor.worker', $1, true)",
                &[&w.to_string()],
            )
            .unwrap();
        }
        let n = |tx: &mut postgres::Transaction, sql: &str| {
            tx.query_one(sql, &[]).unwrap().get::<_, i64>(0)
        };
        let r = (
            n(
                &mut tx,
                "SELECT COUNT(*) FROM records WHERE case_id IS NOT NULL",
            ),
            n(&mut tx, "SELECT COUNT(*) FROM case_index"),
            n(&mut tx, "SELECT COUNT(*) FROM participant_index"),
        );
        tx.rollback().unwrap();
        r
    };
    assert_eq!(
        case_rows(&mut app, None),
        (0, 0, 0),
        "no worker set: nothing"
    );
    let outsider = case_rows(&mut app, Some(w.staff["outsider"]));
    assert_eq!(outsider.1, 1, "the outsider sees only case 2");
    let mut tx = app.transaction().unwrap();
    tx.execute(
        "SELECT set_config('feltkontor.worker', $1, true)",
        &[&w.staff["outsider"].to_string()],
    )
    .unwrap();
    let visible: Vec<String> = tx
        .query(
            "SELECT DISTINCT case_id FROM records WHERE case_id IS NOT NULL",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        visible,
        vec![w.case2.to_string()],
        "no row of case 1 reaches the outsider"
    );
    // Writing into a case outside scope is refused too.
    let err = tx.execute(
        "INSERT INTO records (entity, id, case_id, data, field_hlc, archived, seq) VALUES ('note', 'x', $1, '{}', '{}', 0, 0)",
        &[&w.case1.to_string()],
    );
    assert!(err.is_err(), "RLS refuses a write outside scope");
    drop(tx);
    // The scope rows the policies look up: a worker reads their own only and writes none (the
    // projections' triggers do, as the owner).
    let mut tx = app.transaction().unwrap();
    tx.execute(
        "SELECT set_config('feltkontor.worker', $1, true)",
        &[&w.staff["outsider"].to_string()],
    )
    .unwrap();
    let scope: Vec<(String, String)> = tx
        .query("SELECT staff_id, case_id FROM scope_index", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        scope,
        vec![(w.staff["outsider"].to_string(), w.case2.to_string())],
        "the outsider reads their own scope row only"
    );
    let err = tx.execute(
        "INSERT INTO scope_index (staff_id, case_id) VALUES ($1, $2)",
        &[&w.staff["outsider"].to_string(), &w.case1.to_string()],
    );
    assert!(err.is_err(), "no worker writes their own scope");
    drop(tx);
    // The policies are an index probe, not a function the planner cannot see into.
    let policies: Vec<String> = app
        .query(
            "SELECT COALESCE(qual, '') || ' ' || COALESCE(with_check, '') FROM pg_policies WHERE tablename IN ('records', 'case_index', 'participant_index', 'case_history')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(policies.len(), 4);
    for p in &policies {
        assert!(
            p.contains("scope_index") && !p.contains("feltkontor_case_visible"),
            "{p}"
        );
    }
    let coord = case_rows(&mut app, Some(w.staff["coord"]));
    assert!(
        coord.0 > 5 && coord.1 == 1,
        "the coordinator sees case 1: {coord:?}"
    );
    // The audit log is append-only for the service.
    let err = app.execute("UPDATE audit_log SET detail = 'x'", &[]);
    assert!(err.is_err(), "no UPDATE on the audit log");
    let err = app.execute("DELETE FROM audit_log", &[]);
    assert!(err.is_err(), "no DELETE on the audit log");
}

/// Two server processes on one PostgreSQL database serve the same clients: a token from one
/// works on the other, a refresh rotated on one is spent on both.
#[test]
fn two_stateless_instances_on_postgres() {
    let db = Db::migrated(Kind::Postgres);
    let w = world::build(&db);
    let a = Server::start(&db, &["--device-requests", "64"]);
    let b = Server::start(&db, &["--device-requests", "64"]);
    let (ca, cb) = (a.client(), b.client());
    let enrolled = ca.enroll(&db, "coord");
    let t = token(&enrolled);
    assert_eq!(
        cb.get(&format!("/v1/cases/{}", w.case1), Some(&t)).status,
        200
    );
    let rotated = cb.post(
        "/v1/token",
        &json!({"refresh_token": enrolled["refresh_token"]}),
    );
    assert_eq!(rotated.status, 200);
    // The rotated token works on the other instance; the spent one is then a replay there.
    assert_eq!(
        ca.post(
            "/v1/token",
            &json!({"refresh_token": rotated.body["refresh_token"]})
        )
        .status,
        200
    );
    assert_eq!(
        ca.post(
            "/v1/token",
            &json!({"refresh_token": enrolled["refresh_token"]})
        )
        .code(),
        "session_revoked"
    );
    // Concurrent reads through both keep one unbroken audit chain.
    let fresh = ca.enroll(&db, "teamcw");
    let handles: Vec<_> = (0..40)
        .map(|i| {
            let c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
            let t = token(&fresh);
            let case = w.case1;
            std::thread::spawn(move || c.get(&format!("/v1/cases/{case}"), Some(&t)).status)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    let mut owner = db.owner();
    assert_eq!(
        feltkontor_central::audit::verify(owner.as_mut())
            .unwrap()
            .first_broken,
        None
    );
}

/// Tampering with the audit log is detected by `admin audit-verify`.
fn audit_tampering_is_detected(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let c = server.client();
    let t = token(&c.enroll(&db, "coord"));
    for _ in 0..3 {
        assert_eq!(
            c.get(&format!("/v1/cases/{}", w.case1), Some(&t)).status,
            200
        );
    }
    db.admin(&["audit-verify"], None).success();
    // Only by going around the schema's guard can a row change; the chain shows it.
    let mut owner = db.owner();
    match kind {
        Kind::Sqlite => owner
            .batch("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET detail = detail || ' (rettet)' WHERE seq = 3;")
            .unwrap(),
        Kind::Postgres => owner
            .batch("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change; UPDATE audit_log SET detail = detail || ' (rettet)' WHERE seq = 3;")
            .unwrap(),
    }
    let out = db.admin(&["audit-verify"], None);
    assert!(!out.status.success());
    assert!(out.stderr.contains("broken at row 3"), "{}", out.stderr);
}
backends!(audit_tampering_is_detected);

/// With a certificate and key the service speaks TLS (rustls) only.
#[test]
fn serves_tls_with_the_given_certificate() {
    let db = Db::migrated(Kind::Sqlite);
    let dir = db.dir().to_owned();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut gen = std::process::Command::new("openssl");
    gen.args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
    ])
    .args([
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    ])
    .arg("-keyout")
    .arg(&key)
    .arg("-out")
    .arg(&cert);
    run(gen, None).success();
    let port = free_port();
    let log = log_dir().join(format!("tls-{port}.log"));
    let mut child = std::process::Command::new(BIN)
        .args([
            "--database-url",
            &db.app_url,
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let curl = |scheme: &str| {
        let mut c = std::process::Command::new("curl");
        c.args(["-s", "--max-time", "5", "--cacert"])
            .arg(&cert)
            .arg(format!("{scheme}://127.0.0.1:{port}/health"));
        run(c, None)
    };
    let mut answer = String::new();
    for _ in 0..100 {
        answer = curl("https").stdout;
        if answer.contains("ok") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        answer.contains("\"status\":\"ok\""),
        "https answers: {answer:?}"
    );
    assert!(
        !curl("http").stdout.contains("ok"),
        "plain HTTP is not served on the TLS port"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A request stuck behind a database lock is answered with `timeout` when its time is up.
fn a_stuck_request_times_out_with_a_clear_answer(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &["--request-timeout", "1"]);
    let c = server.client();
    let t = token(&c.enroll(&db, "coord"));
    // Another connection holds the write lock the read's audit row needs.
    let mut blocker = db.owner();
    match kind {
        Kind::Sqlite => blocker.begin().unwrap(),
        Kind::Postgres => {
            blocker.begin().unwrap();
            blocker
                .batch("LOCK TABLE audit_head IN ACCESS EXCLUSIVE MODE")
                .unwrap();
        }
    }
    let started = std::time::Instant::now();
    let r = c.get(&format!("/v1/cases/{}", w.case1), Some(&t));
    assert_eq!((r.status, r.code()), (503, "timeout"), "{:?}", r.body);
    assert!(r.headers.get("retry-after").is_some());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    blocker.rollback().unwrap();
    // Once the lock is gone the service answers again.
    assert_eq!(
        c.get(&format!("/v1/cases/{}", w.case1), Some(&t)).status,
        200
    );
}
backends!(a_stuck_request_times_out_with_a_clear_answer);

/// A landed migration edited after it was applied is found at start: the server and the admin
/// commands refuse to run, naming it.
fn an_edited_migration_is_refused(kind: Kind) {
    let db = Db::migrated(kind);
    let mut owner = db.owner();
    let n = owner
        .query_one(
            "SELECT COUNT(*) FROM schema_migrations WHERE checksum IS NOT NULL",
            feltkontor_central::params![],
        )
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap();
    assert_eq!(
        n,
        feltkontor_central::migrate::LATEST,
        "every migration has its checksum"
    );
    owner
        .execute(
            "UPDATE schema_migrations SET checksum = $1 WHERE version = 3",
            feltkontor_central::params!["0".repeat(64)],
        )
        .unwrap();
    let out = common::run(
        {
            let mut c = std::process::Command::new(common::BIN);
            c.arg("--database-url")
                .arg(&db.app_url)
                .arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{}", common::free_port()));
            c
        },
        None,
    );
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("migration 3 (0003_quarantine.sql)"),
        "{}",
        out.stderr
    );
    let out = db.admin(&["migrate"], None);
    assert!(!out.status.success());
    assert!(out.stderr.contains("migration 3"), "{}", out.stderr);
}
backends!(an_edited_migration_is_refused);

/// The two engines' schemas hold the same tables and columns, with the same kinds of value and
/// the same nullability.
#[test]
fn sqlite_and_postgres_schemas_match() {
    let lite = Db::migrated(Kind::Sqlite);
    let pg = Db::migrated(Kind::Postgres);
    let mut l = lite.owner();
    let tables: Vec<String> = l
        .query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            feltkontor_central::params![],
        )
        .unwrap()
        .iter()
        .map(|r| r.text(0).unwrap())
        .collect();
    let mut sqlite_cols = std::collections::BTreeMap::new();
    for t in &tables {
        for r in l
            .query(
                &format!("SELECT name, type, \"notnull\" FROM pragma_table_info('{t}')"),
                feltkontor_central::params![],
            )
            .unwrap()
        {
            let ty = match r.text(1).unwrap().to_uppercase().as_str() {
                "TEXT" => "text",
                "INTEGER" | "BIGINT" => "int",
                "BLOB" => "bytes",
                other => panic!("{t}: column type {other} is not one both engines share"),
            };
            sqlite_cols.insert(
                (t.clone(), r.text(0).unwrap()),
                (ty, r.int(2).unwrap() != 0),
            );
        }
    }
    let mut p = pg.owner();
    let mut pg_cols = std::collections::BTreeMap::new();
    for r in p
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text FROM information_schema.columns
             WHERE table_schema = 'public'",
            feltkontor_central::params![],
        )
        .unwrap()
    {
        let ty = match r.text(2).unwrap().as_str() {
            "text" => "text",
            "bigint" | "integer" => "int",
            "bytea" => "bytes",
            other => panic!("column type {other} is not one both engines share"),
        };
        pg_cols.insert(
            (r.text(0).unwrap(), r.text(1).unwrap()),
            (ty, r.text(3).unwrap() == "NO"),
        );
    }
    assert!(sqlite_cols.len() > 80, "{} columns", sqlite_cols.len());
    let only_sqlite: Vec<_> = sqlite_cols
        .keys()
        .filter(|k| !pg_cols.contains_key(*k))
        .collect();
    let only_pg: Vec<_> = pg_cols
        .keys()
        .filter(|k| !sqlite_cols.contains_key(*k))
        .collect();
    assert!(
        only_sqlite.is_empty() && only_pg.is_empty(),
        "only on SQLite: {only_sqlite:?}; only on PostgreSQL: {only_pg:?}"
    );
    for (k, v) in &sqlite_cols {
        // SQLite reports a primary key's column as nullable unless it says NOT NULL; the kind
        // of value must agree, and a NOT NULL on one engine must be one on the other.
        let w = pg_cols[k];
        assert_eq!(v.0, w.0, "{k:?}: {v:?} on SQLite, {w:?} on PostgreSQL");
        assert!(!v.1 || w.1, "{k:?}: NOT NULL on SQLite only");
    }
}
