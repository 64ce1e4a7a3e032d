//! The sync protocol's messages: a device pushes its change log and pulls what its worker may
//! see, bucket by bucket.
use crate::{ChangeEntry, EntityKind, Hlc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

pub use crate::hlc::MAX_HLC_COUNTER;

/// Most change-log entries in one push.
pub const MAX_PUSH_ENTRIES: usize = 500;
/// Most records in one pull page.
pub const MAX_PULL_RECORDS: u32 = 5_000;
/// How far ahead of the service's clock a change may be stamped before it is refused.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// A batch of the device's change log, oldest first, numbered 1, 2, 3, … per device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub entries: Vec<ChangeEntry>,
}

/// The service's answer to a push: everything up to `acked_seq` is done (applied, already
/// had, or refused for good and listed in `rejected`); the device may mark it pushed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushResponse {
    pub acked_seq: u64,
    pub applied: u32,
    /// Entries the service had already applied (a retried request).
    pub duplicates: u32,
    pub rejected: Vec<RejectedChange>,
}

/// A change the service refused for good: it does not block the queue; the worker is told why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectedChange {
    pub seq: u64,
    pub entity: EntityKind,
    pub entity_id: Uuid,
    /// Stable code, e.g. `forbidden`, `invalid_input`, `signed_note_changed`.
    pub code: String,
    pub reason: String,
}

/// What a device asks for: its cursor per bucket (`case:<uuid>`, `team`); a bucket it has not
/// seen is absent (cursor 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PullRequest {
    pub cursors: BTreeMap<String, u64>,
    /// Most records in the answer; capped by [`MAX_PULL_RECORDS`].
    pub limit: u32,
}

/// One page of the worker's data. `visible` lists every bucket the worker may see now: a
/// bucket the device holds that is not listed must be deleted from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PullResponse {
    pub buckets: Vec<BucketPage>,
    pub visible: Vec<String>,
    /// Per visible case bucket, how much of it the worker sees (participant or not, …). When a
    /// bucket's view changes, what the device holds of it was cut for another view: the device
    /// deletes the bucket and pulls it again from the start.
    #[serde(default)]
    pub views: std::collections::BTreeMap<String, String>,
    /// More records are waiting: pull again with the new cursors.
    pub more: bool,
    /// When `more`: about how many records wait after this page (for a progress bar; records
    /// the worker may not see are counted too, so it is an upper bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// Buckets whose cursor is older than the service's horizon (deleted records after it were
    /// purged): the device deletes each of them and pulls it again from the start. No records
    /// of these buckets are in this page.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reset: Vec<String>,
    /// On the last page (`more` false): how many quarantined notes wait for this worker's
    /// decision (as a case's coordinator, or a leader on its team). The app announces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<u32>,
}

/// A device asks whether what it holds of each bucket is what the service holds for its
/// worker: its cursor per bucket, as for a pull. Asked now and then (once a day), apart from
/// pulling, so that a bucket damaged on the device without a change to show for it is found
/// even when nothing new comes for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub cursors: BTreeMap<String, u64>,
}

/// The checksum (as in [`BucketPage::checksum`]) of each bucket the device holds that is
/// visible to the worker and has nothing after the device's cursor. A bucket not listed is
/// not compared this time (the next pull brings what is new, with its checksum).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyResponse {
    pub checksums: BTreeMap<String, u64>,
}

/// The cursors a device holds once it applied `page` (when the page reset no bucket): each
/// bucket's new cursor, and the buckets no longer visible gone. The next page of a stream is
/// the answer for these.
pub fn advance_cursors(cursors: &mut BTreeMap<String, u64>, page: &PullResponse) {
    for b in &page.buckets {
        cursors.insert(b.bucket.clone(), b.cursor);
    }
    let visible: std::collections::BTreeSet<&str> =
        page.visible.iter().map(String::as_str).collect();
    cursors.retain(|bucket, _| visible.contains(bucket.as_str()));
}

/// Records of one bucket changed after the device's cursor, in the service's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BucketPage {
    pub bucket: String,
    pub records: Vec<SyncRecord>,
    /// The cursor to store once these records are applied (a complete checkpoint).
    pub cursor: u64,
    /// When this page reaches the end of the bucket: the checksum of the whole bucket as the
    /// worker may see it now (the sum of [`record_digest`] over its live records). A device with
    /// nothing unsent that holds something else deletes the bucket and pulls it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<u64>,
}

/// A record as the worker may see it: every field with the clock that set it (`*` stands for
/// every field not listed). Fields the worker may not see (a protected address) are absent and
/// `redacted` names them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncRecord {
    pub entity: EntityKind,
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Map<String, Value>,
    pub field_hlc: BTreeMap<String, Hlc>,
    pub archived: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted: Vec<String>,
}

/// The bucket of a case's records.
pub fn case_bucket(case: Uuid) -> String {
    format!("case:{case}")
}

/// The bucket of team reference data (teams, staff, memberships).
pub const TEAM_BUCKET: &str = "team";

/// Live updates: the device waits (long-poll) until the service has applied a change since
/// `generation` it last heard, or until the service's hold time ends. The answer carries no
/// data, only the new generation: the device then pulls as usual. `since: 0` answers at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WaitRequest {
    pub since: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitResponse {
    /// Differs from the request's `since` when a change that concerns the worker was applied
    /// (then pull); the same when nothing did while the request was held.
    pub generation: u64,
}

/// Most access-log entries in one upload.
pub const MAX_ACCESS_ENTRIES: usize = 1_000;
/// Longest search criterion an access-log entry may carry, in characters.
pub const MAX_CRITERION_CHARS: usize = 500;

/// The device's own access log (who opened which case or person, what was searched), uploaded
/// in the same round as its changes so the municipality's audit log also covers what was read
/// offline. Each entry keeps its id: an entry sent again is recorded once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AccessUpload {
    pub entries: Vec<AccessRecord>,
}

/// One use of personal data on the device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AccessRecord {
    pub id: Uuid,
    /// When it happened on the device (ms since the Unix epoch, UTC).
    pub at_ms: i64,
    pub worker: Uuid,
    pub device: Uuid,
    pub action: crate::AccessAction,
    #[serde(default)]
    pub case_id: Option<Uuid>,
    #[serde(default)]
    pub person_id: Option<Uuid>,
    /// The search criterion, for searches.
    #[serde(default)]
    pub criterion: Option<String>,
}

/// The service's answer to an access-log upload: every entry is now in its audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessUploadResponse {
    /// Entries recorded by this request.
    pub recorded: u32,
    /// Entries the service had already recorded (a retried request).
    pub duplicates: u32,
    /// Entries refused for good (another worker's, or a case or person the worker never had
    /// in sight): audited as such, never recorded as a use; the device is done with them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Uuid>,
}

/// Notes refused because their author had lost access to the case while offline, waiting for
/// the case's coordinator or a leader on its team to decide. Only those the asking worker
/// decides on are listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineList {
    pub notes: Vec<QuarantinedNote>,
}

/// One waiting note: every refused change of it, merged oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantinedNote {
    pub note_id: Uuid,
    pub case_id: Uuid,
    pub child_name: String,
    pub author_id: Uuid,
    pub author_name: String,
    /// When the first of its changes reached the service (ms since the Unix epoch).
    pub received_at_ms: i64,
    /// The note's fields as its author last wrote them.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: Map<String, Value>,
    /// How many refused changes it is made of.
    pub changes: u32,
    /// Text fields left out of `fields`: the note is for one discipline, and the decider is not
    /// one of its participants (the note visibility rules hold here too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<String>,
}

/// A decision on a waiting note: `accept` writes it into the case as its author wrote it;
/// otherwise it stays out of the case (and is still kept on the service, never deleted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QuarantineDecision {
    pub note_id: Uuid,
    pub accept: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuarantineResolved {
    pub note_id: Uuid,
    pub accepted: bool,
    /// Changes decided on.
    pub changes: u32,
}

/// A live record's share of its bucket's checksum: FNV-1a (64 bit) over the kind, the id and
/// the fields as JSON with sorted keys (a field withheld from the worker counts as `null`, as
/// the device holds it). A bucket's checksum is the wrapping sum over its live records, so the
/// order of records does not matter and device and service compute it the same way.
pub fn record_digest(entity: EntityKind, id: Uuid, data: &Map<String, Value>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let json = serde_json::to_string(data).unwrap_or_default();
    let mut h = OFFSET;
    for part in [
        entity.as_str().as_bytes(),
        b"\0",
        id.as_bytes(),
        b"\0",
        json.as_bytes(),
    ] {
        for b in part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_depends_on_every_field_and_not_on_key_order() {
        let id = Uuid::from_u128(7);
        let mut a = Map::new();
        a.insert("name".into(), Value::from("Søren"));
        a.insert("custody".into(), Value::from(true));
        let mut b = Map::new();
        b.insert("custody".into(), Value::from(true));
        b.insert("name".into(), Value::from("Søren"));
        assert_eq!(
            record_digest(EntityKind::Person, id, &a),
            record_digest(EntityKind::Person, id, &b)
        );
        b.insert("name".into(), Value::from("Soren"));
        assert_ne!(
            record_digest(EntityKind::Person, id, &a),
            record_digest(EntityKind::Person, id, &b)
        );
        assert_ne!(
            record_digest(EntityKind::Person, id, &a),
            record_digest(EntityKind::Relation, id, &a)
        );
        assert_ne!(
            record_digest(EntityKind::Person, id, &a),
            record_digest(EntityKind::Person, Uuid::from_u128(8), &a)
        );
    }
}
