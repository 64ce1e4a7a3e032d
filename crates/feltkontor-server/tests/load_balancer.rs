//! Behind a real load balancer (HAProxy on loopback, `option forwardfor`): the service limits
//! each client by the address the balancer names, only when the balancer is configured as a
//! trusted proxy, and never believes an `X-Forwarded-For` a client wrote itself. Clients come
//! from distinct loopback addresses (127.0.0.2, 127.0.0.3, …).

mod common;

use common::balancer::Balancer;
use common::{Db, Kind, Server};
use std::net::IpAddr;

/// A refresh with a token that is not valid (a new one each time, so only the address limit
/// can refuse it), from `from`, to `port`: 401, or 429 once the address is limited.
fn refresh_from(from: &str, port: u16, forwarded_for: Option<&str>) -> u16 {
    refresh_with(
        &format!("not-a-token-{}", uuid::Uuid::now_v7()),
        from,
        port,
        forwarded_for,
    )
}

fn refresh_with(token: &str, from: &str, port: u16, forwarded_for: Option<&str>) -> u16 {
    let http = reqwest::blocking::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut req = http
        .post(format!("http://127.0.0.1:{port}/v1/token"))
        .json(&serde_json::json!({ "refresh_token": token }));
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().unwrap().status().as_u16()
}

/// Enough requests from one client to use up its allowance (1 per second, burst 2).
fn exhaust(from: &str, port: u16, forwarded_for: Option<&str>) -> Vec<u16> {
    (0..6)
        .map(|_| refresh_from(from, port, forwarded_for))
        .collect()
}

#[test]
fn clients_behind_the_balancer_are_limited_each_by_their_own_address() {
    common::tls_provider();
    let db = Db::migrated(Kind::Sqlite);
    let server = Server::start(
        &db,
        &["--address-rate", "1", "--trusted-proxy", "127.0.0.1"],
    );
    let lb = Balancer::start(&[server.addr()]);

    let a = exhaust("127.0.0.2", lb.port, None);
    assert!(a.contains(&429), "client A is limited: {a:?}");
    // Client B, behind the same balancer, is not limited by A's requests.
    assert_eq!(refresh_from("127.0.0.3", lb.port, None), 401);
    // A cannot escape its limit by naming another address itself: the balancer appends the
    // address it saw, and only that is believed.
    assert_eq!(
        refresh_from("127.0.0.2", lb.port, Some("198.51.100.7")),
        429
    );
    // A client that reaches the service directly is not a trusted proxy: the address it names
    // (A's, limited) is ignored and it is limited by its own.
    assert_eq!(
        refresh_from("127.0.0.4", server.addr().port(), Some("127.0.0.2")),
        401
    );
}

#[test]
fn without_a_trusted_proxy_the_header_is_ignored() {
    common::tls_provider();
    let db = Db::migrated(Kind::Sqlite);
    let server = Server::start(&db, &["--address-rate", "1"]);
    let lb = Balancer::start(&[server.addr()]);
    let a = exhaust("127.0.0.2", lb.port, None);
    assert!(a.contains(&429), "{a:?}");
    // Every request comes from the balancer's address: B shares A's limit.
    assert_eq!(refresh_from("127.0.0.3", lb.port, None), 429);
    // Naming a fresh address helps nobody.
    assert_eq!(
        refresh_from("127.0.0.2", lb.port, Some("203.0.113.50")),
        429
    );
}

/// Behind NAT, or a balancer not named as trusted, a whole municipality shares one address:
/// with the default limits, sixty devices refreshing at the same moment all get through, and
/// the one device that hammers is stopped by its own limit, not by everyone's.
#[test]
fn devices_sharing_one_address_are_limited_each_by_their_own_credential() {
    common::tls_provider();
    let db = Db::migrated(Kind::Sqlite);
    let server = Server::start(&db, &[]);
    let lb = Balancer::start(&[server.addr()]);
    for i in 0..60 {
        let token = format!("device-{i}-refresh-token");
        assert_eq!(
            refresh_with(&token, "127.0.0.2", lb.port, None),
            401,
            "device {i} is refused only for its bad token"
        );
    }
    let hammered: Vec<u16> = (0..15)
        .map(|_| refresh_with("one-device-hammering", "127.0.0.2", lb.port, None))
        .collect();
    assert!(hammered.contains(&429), "{hammered:?}");
    // The others behind the same address are not held back by it.
    assert_eq!(
        refresh_with("device-61-refresh-token", "127.0.0.2", lb.port, None),
        401
    );
    // An account's enrollment attempts count per account: another account's go through.
    let enroll = |username: &str| {
        reqwest::blocking::Client::new()
            .post(format!("http://127.0.0.1:{}/v1/enroll", lb.port))
            .json(&serde_json::json!({"code": "AAAA-BBBB", "username": username, "password": "forkert", "device_name": "x"}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let one: Vec<u16> = (0..15).map(|_| enroll("ens")).collect();
    assert!(one.contains(&429), "{one:?}");
    assert_ne!(enroll("anden"), 429);
    // Someone elsewhere hammering a colleague's credential does not lock the colleague out:
    // the limit counts per credential and address.
    let port = server.addr().port();
    let attacker: Vec<u16> = (0..15)
        .map(|_| refresh_with("a-colleagues-token", "127.0.0.5", port, None))
        .collect();
    assert!(attacker.contains(&429), "{attacker:?}");
    assert_eq!(
        refresh_with("a-colleagues-token", "127.0.0.6", port, None),
        401,
        "the colleague at their own desk gets through"
    );
}
