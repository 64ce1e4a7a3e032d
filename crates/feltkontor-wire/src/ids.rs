use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "specta", derive(specta::Type))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A district team.
    TeamId
);
id_type!(
    /// A member of staff (a worker).
    StaffId
);
id_type!(
    /// One child's case.
    CaseId
);
id_type!(
    /// A person in the child's family or network.
    PersonId
);
id_type!(
    /// A case note (journal entry).
    NoteId
);
id_type!(
    /// A consent to share information between sectors.
    ConsentId
);
id_type!(
    /// An agreement (aftale) with the family.
    AgreementId
);
id_type!(
    /// A planned home visit, meeting or network meeting.
    AppointmentId
);
id_type!(
    /// A device (one installation of the desktop app for one worker).
    DeviceId
);
id_type!(
    /// One change-log entry (operation).
    OpId
);
id_type!(
    /// Generic id of a set row (participant, phone, relation, membership, handover, access-log entry).
    RowId
);
