//! A small consistent set of entities for unit tests.

use crate::clock::ManualClock;
use crate::domain::*;
use crate::store::{KdfParams, Store, StoreLocation};
use feltkontor_wire::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use time::macros::{date, datetime};

pub const PASSPHRASE: &str = "korrekt hest batteri hæfteklamme";

pub struct Sample {
    pub team: Team,
    pub staff: Staff,
    pub colleague: Staff,
    pub case: Case,
    pub participant: Participant,
    pub person: Person,
    pub phone: Phone,
    pub relation: Relation,
    pub note: CaseNote,
    pub consent: Consent,
    pub agreement: Agreement,
    pub handover: Handover,
}

impl Sample {
    pub fn new() -> Self {
        let team = Team {
            id: TeamId::new(),
            name: "Team Søndervang".into(),
            district: "Søndervang".into(),
        };
        let staff = Staff {
            id: StaffId::new(),
            name: "Mette Kjær".into(),
            initials: "MK".into(),
            profession: Profession::Caseworker,
            sector: StaffSector::SocialServices,
        };
        let colleague = Staff {
            id: StaffId::new(),
            name: "Jonas Brandt".into(),
            initials: "JB".into(),
            profession: Profession::Psychologist,
            sector: StaffSector::SchoolsDaycare,
        };
        let case = Case {
            id: CaseId::new(),
            team_id: team.id,
            child_name: "Søren Åberg".into(),
            child_birth_date: date!(2015 - 03 - 01),
            child_cpr: Some(Cpr::parse("010315-9999").unwrap()),
            child_institution: Some("Ellehøj Skole".into()),
            status: CaseStatus::Open,
            closed_reason: None,
            coordinator_id: staff.id,
            opened_on: date!(2026 - 01 - 05),
            first_concern_on: Some(date!(2025 - 12 - 01)),
            first_meeting_on: Some(date!(2026 - 01 - 10)),
        };
        let participant = Participant {
            id: RowId::new(),
            case_id: case.id,
            staff_id: colleague.id,
            role: "PPR-psykolog".into(),
            legal_basis: Some(
                "Udveksling efter servicelovens § 49 b: bekymring for barnets trivsel".into(),
            ),
        };
        let person = Person {
            id: PersonId::new(),
            case_id: case.id,
            name: "Hanne Åberg".into(),
            relation: RelationToChild::Mother,
            custody: true,
            email: Some("hanne@example.dk".into()),
            address: Some("Skjoldhøjvej 12, 8210 Aarhus V".into()),
            protected_address: true,
            language: Some("dansk".into()),
            interpreter_needed: false,
            do_not_contact: false,
            do_not_contact_reason: None,
        };
        let phone = Phone {
            id: RowId::new(),
            case_id: case.id,
            person_id: person.id,
            number: "+45 12 34 56 78".into(),
            label: Some("mobil".into()),
        };
        let relation = Relation {
            id: RowId::new(),
            case_id: case.id,
            from_person_id: None,
            to_person_id: person.id,
            quality: RelationQuality::Supportive,
            as_of: date!(2026 - 01 - 10),
        };
        let note = CaseNote {
            id: NoteId::new(),
            case_id: case.id,
            author_id: staff.id,
            kind: NoteKind::HomeVisit,
            occurred_at: datetime!(2026-11-20 10:00 UTC),
            body: "Hjemmebesøg hos familien i Århus. Mor fortæller om søvnproblemer.".into(),
            child_words: "Jeg vil gerne bo hos mor".into(),
            family_perspective: "Mor ønsker hjælp til morgenrutiner".into(),
            statutory: true,
            audience: Audience::CaseTeam,
            status: NoteStatus::Draft,
            signed_at: None,
            content_hash: None,
            addendum_to: None,
        };
        let consent = Consent {
            id: ConsentId::new(),
            case_id: case.id,
            given_by: person.id,
            sectors: BTreeSet::from([ConsentSector::School, ConsentSector::Ppr]),
            valid_from: date!(2026 - 01 - 10),
            valid_to: Some(date!(2027 - 01 - 10)),
            withdrawn_at: None,
        };
        let agreement = Agreement {
            id: AgreementId::new(),
            case_id: case.id,
            what: "Mor kontakter skolen om fravær".into(),
            responsible_staff_id: None,
            responsible_person_id: Some(person.id),
            due_on: Some(date!(2026 - 12 - 01)),
            done_at: None,
        };
        let handover = Handover {
            id: RowId::new(),
            case_id: case.id,
            from_staff_id: staff.id,
            to_staff_id: colleague.id,
            note: "Overdragelse: familien er i gang med forløb".into(),
            at: datetime!(2026-11-21 09:00 UTC),
        };
        Sample {
            team,
            staff,
            colleague,
            case,
            participant,
            person,
            phone,
            relation,
            note,
            consent,
            agreement,
            handover,
        }
    }

    pub fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(datetime!(2026-11-23 09:00 UTC)))
    }

    /// A new store on disk for `self.staff` with the team, both staff members, the case, its
    /// participant and the person written.
    pub fn sample_store(&self, dir: &std::path::Path) -> (Store, Arc<ManualClock>) {
        let clock = Self::clock();
        let loc = StoreLocation::new(dir);
        let mut store = Store::create_with(
            &loc,
            PASSPHRASE,
            self.staff.id,
            DeviceId::new(),
            KdfParams::default(),
            clock.clone(),
        )
        .unwrap();
        store
            .write(|w| {
                w.put_team(&self.team)?;
                w.put_staff(&self.staff)?;
                w.put_staff(&self.colleague)?;
                w.add_team_member(self.team.id, self.staff.id)?;
                w.open_case(&self.case)?;
                w.add_participant(&self.participant)?;
                w.put_person(&self.person)?;
                Ok(())
            })
            .unwrap();
        (store, clock)
    }
}
