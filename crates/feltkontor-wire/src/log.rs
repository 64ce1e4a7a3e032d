use crate::{DeviceId, Hlc, OpId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The kinds of record that the change log carries. Multi-valued data (memberships,
/// participants, phones, relations) are their own kinds of row, so concurrent additions on two
/// devices are two rows, never a conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Team,
    Staff,
    TeamMember,
    Case,
    Participant,
    Handover,
    Person,
    Phone,
    Relation,
    Note,
    Consent,
    Agreement,
    /// Two devices changed one field without seeing each other's change.
    Conflict,
    /// A planned home visit, meeting or network meeting.
    Appointment,
}

impl EntityKind {
    pub const ALL: &'static [EntityKind] = &[
        EntityKind::Team,
        EntityKind::Staff,
        EntityKind::TeamMember,
        EntityKind::Case,
        EntityKind::Participant,
        EntityKind::Handover,
        EntityKind::Person,
        EntityKind::Phone,
        EntityKind::Relation,
        EntityKind::Note,
        EntityKind::Consent,
        EntityKind::Agreement,
        EntityKind::Conflict,
        EntityKind::Appointment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Team => "team",
            EntityKind::Staff => "staff",
            EntityKind::TeamMember => "team_member",
            EntityKind::Case => "case",
            EntityKind::Participant => "participant",
            EntityKind::Handover => "handover",
            EntityKind::Person => "person",
            EntityKind::Phone => "phone",
            EntityKind::Relation => "relation",
            EntityKind::Note => "note",
            EntityKind::Consent => "consent",
            EntityKind::Agreement => "agreement",
            EntityKind::Conflict => "conflict",
            EntityKind::Appointment => "appointment",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// One field's new value and the clock of the write that set it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: serde_json::Value,
    pub hlc: Hlc,
    /// The clock of the value this write replaced on the device (`None` for a new record):
    /// when the service holds a different clock for the field, the two writes were concurrent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Hlc>,
}

/// One entry of a device's change log: the field-level effect of one committed mutation.
///
/// Deletion is a tombstone: the field `archived` set to `true`. Nothing is ever inferred from
/// row diffs after the fact; this entry is what sync sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeEntry {
    pub op_id: OpId,
    /// Per-device sequence number: 1, 2, 3, … with no gaps.
    pub seq: u64,
    pub device: DeviceId,
    pub entity: EntityKind,
    pub entity_id: Uuid,
    pub fields: BTreeMap<String, FieldChange>,
}
