//! Devices for the sync tests: each an enrolled device with its own encrypted store on disk
//! and the sync client; the oracle is the service's own answer for the worker, asked from
//! scratch.

use super::{token, Db, Server};
use feltkontor_core::domain::*;
use feltkontor_core::store::KdfParams;
use feltkontor_core::{Store, StoreLocation, SystemClock};
use feltkontor_sync::{sync_once, Remote};
use feltkontor_wire::sync::{PullRequest, MAX_PULL_RECORDS};
use feltkontor_wire::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

pub struct Device {
    pub store: Store,
    pub remote: Remote,
    pub token: String,
    pub staff: Uuid,
    pub device: Uuid,
    pub _dir: tempfile::TempDir,
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn device(server: &Server, db: &Db, username: &str) -> Device {
    device_at(&server.base, db, username)
}

/// A device that talks to `base`: an instance, or the load balancer in front of several.
pub fn device_at(base: &str, db: &Db, username: &str) -> Device {
    let server = super::Client {
        base: base.to_owned(),
        http: {
            super::tls_provider();
            reqwest::blocking::Client::new()
        },
    };
    let enrolled = server.enroll(db, username);
    let staff: Uuid = enrolled["staff_id"].as_str().unwrap().parse().unwrap();
    let device: Uuid = enrolled["device_id"].as_str().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // As the app does: the key file needs the passphrase and the service's lease.
    let store = Store::create_connected(
        &StoreLocation::new(dir.path().join("profile")),
        "en lang nok adgangssaetning",
        &lease_of(&enrolled),
        &server.base,
        StaffId(staff),
        DeviceId(device),
        KdfParams::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    store
        .set_sync_account(&feltkontor_core::store::account::SyncAccount {
            server_url: server.base.clone(),
            username: username.to_owned(),
            refresh_token: enrolled["refresh_token"].as_str().unwrap().to_owned(),
            connected_at: time::OffsetDateTime::now_utc(),
            last_sync_at: None,
        })
        .unwrap();
    let token = token(&enrolled);
    Device {
        store,
        remote: Remote::new(&server.base, &token).unwrap(),
        token,
        staff,
        device,
        _dir: dir,
    }
}

/// The lease in an enrollment's or refresh's answer.
pub fn lease_of(answer: &Value) -> feltkontor_core::store::keys::Lease {
    let expires = time::OffsetDateTime::parse(
        answer["lease_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    feltkontor_core::store::keys::Lease::from_hex(
        answer["lease_secret"].as_str().unwrap(),
        (expires.unix_timestamp_nanos() / 1_000_000) as i64,
    )
    .unwrap()
}

impl Device {
    /// New tokens for a run longer than an access token lives (the app refreshes the same way).
    #[allow(dead_code)]
    pub fn refresh(&mut self, rt: &tokio::runtime::Runtime, base: &str) {
        let account = self
            .store
            .sync_account()
            .unwrap()
            .expect("a connected store");
        let tokens = rt
            .block_on(
                Remote::new(base, "")
                    .unwrap()
                    .refresh(&account.refresh_token),
            )
            .unwrap();
        self.store.set_refresh_token(&tokens.refresh_token).unwrap();
        self.remote.set_token(&tokens.access_token);
        self.token = tokens.access_token;
    }

    /// One round; the device then holds exactly what the service sends, so no bucket's
    /// checksum may differ.
    pub fn sync(&mut self, rt: &tokio::runtime::Runtime) -> feltkontor_sync::SyncReport {
        let report = rt
            .block_on(sync_once(&self.remote, &mut self.store))
            .unwrap();
        assert!(
            report.checksum_resets.is_empty(),
            "buckets differed from the service's: {:?}",
            report.checksum_resets
        );
        report
    }
}

/// What the service says the worker may see, asked from scratch: live records by kind and id.
pub fn oracle(
    rt: &tokio::runtime::Runtime,
    remote: &Remote,
) -> BTreeMap<(EntityKind, Uuid), Map<String, Value>> {
    let mut cursors = BTreeMap::new();
    let mut seen: BTreeMap<(EntityKind, Uuid), Option<Map<String, Value>>> = BTreeMap::new();
    loop {
        let page = rt
            .block_on(remote.pull(&PullRequest {
                cursors: cursors.clone(),
                limit: MAX_PULL_RECORDS,
            }))
            .unwrap();
        for b in &page.buckets {
            for r in &b.records {
                let mut data = r.data.clone();
                for f in &r.redacted {
                    data.insert(f.clone(), Value::Null);
                }
                seen.insert((r.entity, r.id), (!r.archived).then_some(data));
            }
            cursors.insert(b.bucket.clone(), b.cursor);
        }
        if !page.more {
            break;
        }
    }
    seen.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

pub fn assert_converged(rt: &tokio::runtime::Runtime, d: &Device, who: &str) {
    let want = oracle(rt, &d.remote);
    let have = d.store.live_records().unwrap();
    let missing: Vec<_> = want.keys().filter(|k| !have.contains_key(k)).collect();
    let extra: Vec<_> = have.keys().filter(|k| !want.contains_key(k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{who}: missing {missing:?}, extra {extra:?}"
    );
    for (k, v) in &want {
        assert_eq!(&have[k], v, "{who}: {k:?} differs field by field");
    }
}

pub fn new_person(case: Uuid, name: &str) -> Person {
    Person {
        id: PersonId::new(),
        case_id: CaseId(case),
        name: name.into(),
        relation: RelationToChild::Grandparent,
        custody: false,
        email: None,
        address: None,
        protected_address: false,
        language: None,
        interpreter_needed: false,
        do_not_contact: false,
        do_not_contact_reason: None,
    }
}

/// A new draft case note by `author`, written an hour ago.
pub fn draft_note(case: Uuid, author: StaffId, body: &str) -> CaseNote {
    CaseNote {
        id: NoteId::new(),
        case_id: CaseId(case),
        author_id: author,
        kind: NoteKind::HomeVisit,
        occurred_at: normalize_timestamp(
            time::OffsetDateTime::now_utc() - time::Duration::hours(1),
        ),
        body: body.into(),
        child_words: "".into(),
        family_perspective: "".into(),
        statutory: true,
        audience: Audience::CaseTeam,
        status: NoteStatus::Draft,
        signed_at: None,
        content_hash: None,
        addendum_to: None,
    }
}
