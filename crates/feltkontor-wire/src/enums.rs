use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An unknown enum value in stored or received data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.value)
    }
}

impl std::error::Error for UnknownVariant {}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "specta", derive(specta::Type))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $s)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable identifier used in storage and on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$variant),)+
                    other => Err(UnknownVariant { kind: stringify!($name), value: other.to_owned() }),
                }
            }
        }
    };
}

wire_enum!(
    /// A staff member's profession.
    Profession {
        Caseworker => "caseworker",
        Psychologist => "psychologist",
        HealthVisitor => "health_visitor",
        Educator => "educator",
        SpecialEducator => "special_educator",
        Leader => "leader",
    }
);

wire_enum!(
    /// The administration a staff member belongs to.
    StaffSector {
        /// Børn, Familier og Fællesskaber (MSB).
        SocialServices => "social_services",
        /// Børn og Unge (MBU): schools, daycare, PPR, health visitors.
        SchoolsDaycare => "schools_daycare",
    }
);

wire_enum!(
    /// A sector that a consent can cover.
    ConsentSector {
        SocialServices => "social_services",
        School => "school",
        Ppr => "ppr",
        HealthVisitor => "health_visitor",
        Daycare => "daycare",
    }
);

wire_enum!(
    /// How a person is related to the child.
    RelationToChild {
        Mother => "mother",
        Father => "father",
        StepParent => "step_parent",
        FosterParent => "foster_parent",
        Sibling => "sibling",
        Grandparent => "grandparent",
        OtherFamily => "other_family",
        FriendNeighbour => "friend_neighbour",
        Teacher => "teacher",
        DaycareEducator => "daycare_educator",
        OtherProfessional => "other_professional",
    }
);

wire_enum!(
    /// The quality of a relation in the family network.
    RelationQuality {
        Supportive => "supportive",
        Neutral => "neutral",
        Strained => "strained",
        Broken => "broken",
    }
);

wire_enum!(
    /// What kind of appointment is planned.
    AppointmentKind {
        HomeVisit => "home_visit",
        Meeting => "meeting",
        NetworkMeeting => "network_meeting",
    }
);

wire_enum!(
    /// What kind of event a case note records.
    NoteKind {
        HomeVisit => "home_visit",
        Meeting => "meeting",
        PhoneCall => "phone_call",
        SchoolDaycareVisit => "school_daycare_visit",
        NetworkMeeting => "network_meeting",
        Other => "other",
    }
);

wire_enum!(
    /// Who may read a case note.
    Audience {
        /// Everyone on the case team.
        CaseTeam => "case_team",
        /// Only participants of the author's own discipline (e.g. a health-journal entry).
        OwnDiscipline => "own_discipline",
    }
);

wire_enum!(
    /// A note's lifecycle: a draft can change; a signed note never does.
    NoteStatus {
        Draft => "draft",
        Signed => "signed",
    }
);

wire_enum!(
    /// Whether a case is open or closed.
    CaseStatus {
        Open => "open",
        Closed => "closed",
    }
);

wire_enum!(
    /// What an access-log entry records.
    AccessAction {
        OpenCase => "open_case",
        OpenPerson => "open_person",
        Search => "search",
        Export => "export",
    }
);
