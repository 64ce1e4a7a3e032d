//! A small municipality for the authorization tests, written through the library as the
//! tables' owner (the sync endpoints that will bring such data come with the next issue).

use super::{Db, PASSWORD};
use feltkontor_central::admin::{self, NewStaff};
use feltkontor_central::db::Conn;
use feltkontor_central::records;
use feltkontor_core::domain::*;
use feltkontor_wire::*;
use std::collections::{BTreeMap, BTreeSet};
use time::macros::{date, datetime};
use uuid::Uuid;

/// Text that must never appear in the server's own log.
pub const CPR: &str = "010118-9999";
pub const PROTECTED_ADDRESS: &str = "Hemmeligvej 13, 8000 Aarhus C";
pub const OPEN_ADDRESS: &str = "Kendtvej 2, 8210 Aarhus V";
pub const TEAM_NOTE: &str = "Hjemmebesøg ALFA-sentinel: mor fortæller om morgenerne";
pub const OWN_NOTE: &str = "PPR-journal BRAVO-sentinel";
pub const DRAFT_NOTE: &str = "Kladde CHARLIE-sentinel";
pub const CHILD_WORDS: &str = "Jeg kan godt lide frikvarteret DELTA-sentinel";

pub struct World {
    pub team_a: Uuid,
    pub team_b: Uuid,
    pub case1: Uuid,
    pub case2: Uuid,
    pub mother: Uuid,
    pub father: Uuid,
    pub note_team: Uuid,
    pub note_own: Uuid,
    pub note_draft: Uuid,
    pub consent_ppr: Uuid,
    pub staff: BTreeMap<&'static str, Uuid>,
}

fn staff(
    conn: &mut dyn Conn,
    username: &str,
    name: &str,
    initials: &str,
    profession: Profession,
    sector: StaffSector,
) -> Uuid {
    admin::create_staff(
        conn,
        &NewStaff {
            name,
            initials,
            profession,
            sector,
            username,
            password: PASSWORD,
            contact: &format!("{username}@aarhus.dk"),
        },
    )
    .unwrap()
}

fn note(
    case: Uuid,
    author: Uuid,
    body: &str,
    audience: Audience,
    signed: bool,
    child_words: &str,
) -> CaseNote {
    let mut n = CaseNote {
        id: NoteId::new(),
        case_id: CaseId(case),
        author_id: StaffId(author),
        kind: NoteKind::HomeVisit,
        occurred_at: datetime!(2025-03-01 10:00 UTC),
        body: body.into(),
        child_words: child_words.into(),
        family_perspective: "".into(),
        statutory: true,
        audience,
        status: if signed {
            NoteStatus::Signed
        } else {
            NoteStatus::Draft
        },
        signed_at: signed.then_some(datetime!(2025-03-01 12:00 UTC)),
        content_hash: None,
        addendum_to: None,
    };
    if signed {
        n.content_hash = Some(feltkontor_core::domain::rules::content_hash(&n));
    }
    n
}

pub fn build(db: &Db) -> World {
    let mut owner = db.owner();
    let conn = owner.as_mut();
    let team_a = admin::create_team(conn, "Team Gellerup", "Gellerup").unwrap();
    let team_b = admin::create_team(conn, "Team Viby", "Viby").unwrap();
    use Profession::*;
    use StaffSector::*;
    let mut s = BTreeMap::new();
    s.insert(
        "coord",
        staff(
            conn,
            "coord",
            "Karen Koordinator",
            "KK",
            Caseworker,
            SocialServices,
        ),
    );
    s.insert(
        "teamcw",
        staff(
            conn,
            "teamcw",
            "Tove Teamsen",
            "TT",
            Caseworker,
            SocialServices,
        ),
    );
    s.insert(
        "psy",
        staff(
            conn,
            "psy",
            "Per Psykolog",
            "PP",
            Psychologist,
            SchoolsDaycare,
        ),
    );
    s.insert(
        "psyteam",
        staff(
            conn,
            "psyteam",
            "Pia Teampsykolog",
            "PT",
            Psychologist,
            SchoolsDaycare,
        ),
    );
    s.insert(
        "hv",
        staff(
            conn,
            "hv",
            "Hanne Sundhedsplejerske",
            "HS",
            HealthVisitor,
            SchoolsDaycare,
        ),
    );
    s.insert(
        "hvlegal",
        staff(
            conn,
            "hvlegal",
            "Helle Hjemmel",
            "HH",
            HealthVisitor,
            SchoolsDaycare,
        ),
    );
    s.insert(
        "edu",
        staff(conn, "edu", "Erik Pædagog", "EP", Educator, SchoolsDaycare),
    );
    s.insert(
        "outsider",
        staff(
            conn,
            "outsider",
            "Ole Udenfor",
            "OU",
            Caseworker,
            SocialServices,
        ),
    );
    for u in ["coord", "teamcw", "psyteam"] {
        admin::add_member(conn, u, "Team Gellerup").unwrap();
    }
    admin::add_member(conn, "outsider", "Team Viby").unwrap();

    conn.begin().unwrap();
    let case1 = CaseId::new();
    let c1 = Case {
        id: case1,
        team_id: TeamId(team_a),
        child_name: "Alma Testbarn".into(),
        child_birth_date: date!(2018 - 01 - 01),
        child_cpr: Some(Cpr::parse(CPR).unwrap()),
        child_institution: Some("Tovshøjskolen".into()),
        status: CaseStatus::Open,
        closed_reason: None,
        coordinator_id: StaffId(s["coord"]),
        opened_on: date!(2024 - 09 - 01),
        first_concern_on: None,
        first_meeting_on: None,
    };
    records::put(conn, EntityKind::Case, case1.0, &c1).unwrap();
    let case2 = CaseId::new();
    let c2 = Case {
        id: case2,
        team_id: TeamId(team_b),
        child_name: "Bo Andetbarn".into(),
        child_cpr: None,
        coordinator_id: StaffId(s["outsider"]),
        ..c1.clone()
    };
    records::put(conn, EntityKind::Case, case2.0, &c2).unwrap();
    for (who, legal) in [
        ("coord", None),
        ("psy", None),
        ("hv", None),
        ("edu", None),
        (
            "hvlegal",
            Some("Udveksling efter servicelovens § 49 b: bekymring for trivsel"),
        ),
    ] {
        let p = Participant {
            id: RowId::new(),
            case_id: case1,
            staff_id: StaffId(s[who]),
            role: "deltager".into(),
            legal_basis: legal.map(Into::into),
        };
        records::put(conn, EntityKind::Participant, p.id.0, &p).unwrap();
    }
    let person = |name: &str, relation, address: &str, protected| Person {
        id: PersonId::new(),
        case_id: case1,
        name: name.into(),
        relation,
        custody: true,
        email: None,
        address: Some(address.into()),
        protected_address: protected,
        language: None,
        interpreter_needed: false,
        do_not_contact: false,
        do_not_contact_reason: None,
    };
    let mother = person(
        "Maria Mor",
        RelationToChild::Mother,
        PROTECTED_ADDRESS,
        true,
    );
    let father = person("Frank Far", RelationToChild::Father, OPEN_ADDRESS, false);
    for p in [&mother, &father] {
        records::put(conn, EntityKind::Person, p.id.0, p).unwrap();
    }
    let consent_ppr = Consent {
        id: ConsentId::new(),
        case_id: case1,
        given_by: mother.id,
        sectors: BTreeSet::from([ConsentSector::Ppr]),
        valid_from: date!(2024 - 01 - 01),
        valid_to: None,
        withdrawn_at: None,
    };
    let consent_daycare = Consent {
        id: ConsentId::new(),
        sectors: BTreeSet::from([ConsentSector::Daycare]),
        withdrawn_at: Some(datetime!(2025-06-01 09:00 UTC)),
        ..consent_ppr.clone()
    };
    for c in [&consent_ppr, &consent_daycare] {
        records::put(conn, EntityKind::Consent, c.id.0, c).unwrap();
    }
    let n_team = note(
        case1.0,
        s["coord"],
        TEAM_NOTE,
        Audience::CaseTeam,
        true,
        CHILD_WORDS,
    );
    let n_own = note(
        case1.0,
        s["psy"],
        OWN_NOTE,
        Audience::OwnDiscipline,
        true,
        "",
    );
    let n_draft = note(
        case1.0,
        s["coord"],
        DRAFT_NOTE,
        Audience::CaseTeam,
        false,
        "",
    );
    for n in [&n_team, &n_own, &n_draft] {
        records::put(conn, EntityKind::Note, n.id.0, n).unwrap();
    }
    conn.commit().unwrap();
    World {
        team_a,
        team_b,
        case1: case1.0,
        case2: case2.0,
        mother: mother.id.0,
        father: father.id.0,
        note_team: n_team.id.0,
        note_own: n_own.id.0,
        note_draft: n_draft.id.0,
        consent_ppr: consent_ppr.id.0,
        staff: s,
    }
}

/// Withdraws the PPR consent (as of yesterday).
pub fn withdraw_ppr_consent(db: &Db, w: &World) {
    let mut owner = db.owner();
    let conn = owner.as_mut();
    let mut c: Consent = records::get_as(conn, EntityKind::Consent, w.consent_ppr)
        .unwrap()
        .unwrap();
    c.withdrawn_at = Some(time::OffsetDateTime::now_utc() - time::Duration::days(1));
    conn.begin().unwrap();
    records::put(conn, EntityKind::Consent, c.id.0, &c).unwrap();
    conn.commit().unwrap();
}
