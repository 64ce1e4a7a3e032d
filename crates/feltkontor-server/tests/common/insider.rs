//! An enrolled device of the municipality with a modified client: it speaks the real API on
//! loopback, but sends whatever it likes (forged clocks, other authors, privileged fields,
//! invented ids), numbering its changes itself.

use super::{token, Db, Resp, Server};
use feltkontor_wire::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

pub struct Insider {
    pub token: String,
    pub device: Uuid,
    pub staff: Uuid,
    pub base: String,
    http: reqwest::blocking::Client,
    next_seq: u64,
    counter: u32,
}

pub fn now_ms() -> u64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64
}

impl Insider {
    pub fn enroll(server: &Server, db: &Db, username: &str) -> Insider {
        let enrolled = server.client().enroll(db, username);
        Insider {
            token: token(&enrolled),
            device: enrolled["device_id"].as_str().unwrap().parse().unwrap(),
            staff: enrolled["staff_id"].as_str().unwrap().parse().unwrap(),
            base: server.base.clone(),
            http: server.client().http,
            next_seq: 1,
            counter: 0,
        }
    }

    /// A clock of this device, now (each call later than the one before).
    pub fn hlc(&mut self) -> Hlc {
        self.counter += 1;
        Hlc {
            wall_ms: now_ms(),
            counter: self.counter,
            device: DeviceId(self.device),
        }
    }

    /// The next change of this device: every field of `fields` with one new clock and the
    /// given base (`None`: as for a new record).
    pub fn change(
        &mut self,
        entity: EntityKind,
        id: Uuid,
        fields: Value,
        base: Option<Hlc>,
    ) -> ChangeEntry {
        let hlc = self.hlc();
        let fields: BTreeMap<String, FieldChange> = fields
            .as_object()
            .expect("fields are an object")
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    FieldChange {
                        value: v.clone(),
                        hlc,
                        base,
                    },
                )
            })
            .collect();
        let seq = self.next_seq;
        self.next_seq += 1;
        ChangeEntry {
            op_id: OpId::new(),
            seq,
            device: DeviceId(self.device),
            entity,
            entity_id: id,
            fields,
        }
    }

    /// Pushes `entries`; the answer as sent.
    pub fn push(&self, entries: &[ChangeEntry]) -> Resp {
        self.post("/v1/sync/push", &json!({ "entries": entries }))
    }

    /// Pushes one change and returns the service's answer, which must be a 200.
    pub fn push_one(&mut self, entity: EntityKind, id: Uuid, fields: Value) -> Value {
        let e = self.change(entity, id, fields, None);
        let r = self.push(&[e]);
        assert_eq!(r.status, 200, "push: {:?}", r.body);
        r.body
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.token)
                .json(body),
        )
    }

    pub fn get(&self, path: &str) -> Resp {
        send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.token),
        )
    }

    /// Everything the service sends this worker from scratch, every page, as one JSON text
    /// (to search for text that must not be there).
    pub fn pull_everything(&self) -> (Vec<Value>, String) {
        let mut cursors: BTreeMap<String, u64> = BTreeMap::new();
        let mut pages = Vec::new();
        loop {
            let r = self.post(
                "/v1/sync/pull",
                &json!({ "cursors": cursors, "limit": 5000 }),
            );
            assert_eq!(r.status, 200, "pull: {:?}", r.body);
            for b in r.body["buckets"].as_array().unwrap() {
                cursors.insert(
                    b["bucket"].as_str().unwrap().to_owned(),
                    b["cursor"].as_u64().unwrap(),
                );
            }
            let more = r.body["more"].as_bool().unwrap();
            pages.push(r.body);
            if !more {
                break;
            }
        }
        let text = serde_json::to_string(&pages).unwrap();
        (pages, text)
    }

    /// The live records of one kind this worker receives, by id.
    pub fn pulled(&self, entity: &str) -> BTreeMap<String, Value> {
        let (pages, _) = self.pull_everything();
        let mut out = BTreeMap::new();
        for p in pages {
            for b in p["buckets"].as_array().unwrap() {
                for r in b["records"].as_array().unwrap() {
                    if r["entity"] == entity {
                        if r["archived"] == true {
                            out.remove(r["id"].as_str().unwrap());
                        } else {
                            out.insert(r["id"].as_str().unwrap().to_owned(), r.clone());
                        }
                    }
                }
            }
        }
        out
    }
}

fn send(req: reqwest::blocking::RequestBuilder) -> Resp {
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().unwrap();
    Resp {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// The codes of a push answer's refusals, in order.
pub fn rejected_codes(answer: &Value) -> Vec<String> {
    answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

/// One stored record as the tables' owner sees it: its data, or `None`.
pub fn stored(db: &Db, entity: &str, id: Uuid) -> Option<(Value, bool)> {
    let mut owner = db.owner();
    owner
        .query_one(
            "SELECT data, archived FROM records WHERE entity = $1 AND id = $2",
            feltkontor_central::params![entity, id],
        )
        .unwrap()
        .map(|r| {
            (
                serde_json::from_str(&r.text(0).unwrap()).unwrap(),
                r.int(1).unwrap() != 0,
            )
        })
}

/// How many audit rows match `where_sql` (with `$1` bound to `arg`).
pub fn audit_count(db: &Db, where_sql: &str, arg: &str) -> i64 {
    let mut owner = db.owner();
    owner
        .query_one(
            &format!("SELECT COUNT(*) FROM audit_log WHERE {where_sql}"),
            feltkontor_central::params![arg],
        )
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap()
}
