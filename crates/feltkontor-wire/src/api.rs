//! The central service's request and response bodies besides the sync protocol's
//! ([`crate::sync`]): enrollment, tokens, the lease, the worker, the case overview, and the
//! problem answer every refusal carries. The service answers with these types and the app's
//! sync client reads them; request bodies refuse unknown fields.

use crate::error::ErrorCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time enrollment code from the administrator, `XXXX-XXXX`.
    #[cfg_attr(feature = "openapi", schema(max_length = 32, example = "K7QM-3XPT"))]
    pub code: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub password: String,
    /// A name for the device, shown in the administrator's device list.
    #[cfg_attr(feature = "openapi", schema(max_length = 100, example = "Bærbar 42"))]
    pub device_name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single use: the next refresh must present the one returned here.
    pub refresh_token: String,
    pub device_id: Uuid,
    pub staff_id: Uuid,
    /// The device lease (64 hex characters): with the worker's passphrase it unlocks the
    /// device's local store. The same for the device's lifetime; only the expiry moves.
    pub lease_secret: String,
    /// Until when the device may unlock its store without coming back (RFC 3339).
    pub lease_expires_at: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    /// The device whose lease ran out.
    pub device_id: Uuid,
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub username: String,
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetireResponse {
    /// RFC 3339. From now on the device gets no tokens and no lease.
    pub retired_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseResponse {
    pub lease_secret: String,
    /// RFC 3339.
    pub lease_expires_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamInfo {
    pub id: Uuid,
    pub name: String,
    pub district: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaffInfo {
    pub id: Uuid,
    pub name: String,
    pub initials: String,
    /// caseworker, psychologist, health_visitor, educator, special_educator, leader
    pub profession: String,
    /// social_services or schools_daycare
    pub sector: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    pub id: Uuid,
    pub name: String,
    /// RFC 3339
    pub enrolled_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    pub staff: StaffInfo,
    pub teams: Vec<TeamInfo>,
    pub device: DeviceInfo,
}

/// A colleague and how to reach them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaffContact {
    pub id: Uuid,
    pub name: String,
    pub profession: String,
    /// Work phone or e-mail.
    pub contact: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    /// The case's content, as far as the worker's discipline may read it.
    Full,
    /// Only that the case exists, its coordinator and how to reach them (no consent covers the
    /// worker's sector and no legal basis is recorded).
    Limited,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MyRole {
    Coordinator,
    Participant,
    TeamMember,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseListItem {
    pub id: Uuid,
    pub child_name: String,
    /// open or closed
    pub status: String,
    pub team: Option<TeamInfo>,
    pub coordinator: StaffContact,
    pub my_role: MyRole,
    pub access: AccessLevel,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseList {
    /// Coordinator first, then participant, then team member; by child's name within each.
    pub cases: Vec<CaseListItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParticipantInfo {
    pub staff: StaffContact,
    pub role: String,
    pub legal_basis: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonInfo {
    pub id: Uuid,
    pub name: String,
    pub relation: String,
    pub custody: bool,
    /// Absent when the address is protected and the worker is not a participant.
    pub address: Option<String>,
    pub protected_address: bool,
    pub phones: Vec<String>,
    pub language: Option<String>,
    pub interpreter_needed: bool,
    pub do_not_contact: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentInfo {
    pub id: Uuid,
    pub sectors: Vec<String>,
    /// YYYY-MM-DD
    pub valid_from: String,
    pub valid_to: Option<String>,
    pub withdrawn_at: Option<String>,
    /// Valid today (given, not expired, not withdrawn).
    pub valid_now: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgreementInfo {
    pub id: Uuid,
    pub what: String,
    pub due_on: Option<String>,
    pub done: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NoteInfo {
    pub id: Uuid,
    pub kind: String,
    /// RFC 3339
    pub occurred_at: String,
    pub author: Option<String>,
    /// draft or signed
    pub status: String,
    pub statutory: bool,
    /// case_team or own_discipline
    pub audience: String,
    pub body: String,
    pub child_words: String,
    pub family_perspective: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseDetails {
    /// YYYY-MM-DD
    pub child_birth_date: String,
    pub child_cpr: Option<String>,
    pub child_institution: Option<String>,
    pub opened_on: String,
    pub participants: Vec<ParticipantInfo>,
    pub persons: Vec<PersonInfo>,
    pub consents: Vec<ConsentInfo>,
    pub agreements: Vec<AgreementInfo>,
    /// The child's own words from the latest notes, newest first.
    pub child_words: Vec<NoteInfo>,
    /// The latest notes the worker may read, newest first (at most 20).
    pub latest_notes: Vec<NoteInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CaseOverview {
    pub id: Uuid,
    pub child_name: String,
    pub status: String,
    pub team: Option<TeamInfo>,
    pub coordinator: StaffContact,
    pub access: AccessLevel,
    /// Present only with full access.
    pub details: Option<CaseDetails>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`
    pub status: String,
}

/// An error, as RFC 9457 problem details with a stable `code`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// What happened and what to do, in plain words.
    pub detail: String,
    pub code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before retrying (also in the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// `true`: the device must delete its local data (it was revoked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wipe: Option<bool>,
}

/// One change of a case's record: who changed which fields, when, from which device. Only
/// changes of records the reader may see are listed, and a field withheld from them is not
/// named. The values are not part of it: the reader's own copy of the records holds them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct HistoryEntry {
    /// When the service applied it (milliseconds since 1970, UTC).
    #[cfg_attr(feature = "specta", specta(type = f64))]
    pub at_ms: i64,
    pub staff_id: Uuid,
    pub staff_name: String,
    pub device_id: Uuid,
    /// The device's name as enrolled ("host (user)").
    pub device_name: String,
    pub entity: crate::EntityKind,
    pub entity_id: Uuid,
    pub fields: Vec<String>,
}

/// A page of a case's change history, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CaseHistory {
    pub entries: Vec<HistoryEntry>,
    /// Pass as `before` for the next (older) page (an opaque mark); `None` at the start of
    /// the history.
    #[cfg_attr(feature = "specta", specta(type = Option<f64>))]
    pub next_before: Option<i64>,
}
