//! Synthetic demo and benchmark data: Danish names, the Aarhus districts, teams of mixed
//! professions, cases with families and networks, notes in Danish spread over months,
//! consents and agreements. Never real people: names are drawn at random from common-name
//! lists, and every CPR number has the serial `9999`, the demo marker.

mod text;

use feltkontor_core::domain::*;
use feltkontor_core::store::{Record, Store, Writer};
use feltkontor_wire::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use time::{Date, Duration, OffsetDateTime};

pub use text::DISTRICTS;

/// How much to generate.
#[derive(Clone, Debug)]
pub struct DemoSize {
    pub cases: usize,
    pub notes_per_case: usize,
    pub persons_per_case: usize,
    /// Notes in the first case (coordinated by the signed-in worker) instead of the average:
    /// a long history for measuring the timeline. 0: no such case.
    pub long_case_notes: usize,
}

impl DemoSize {
    /// The default for `make run`: 300 cases.
    pub const DEFAULT: DemoSize = DemoSize {
        cases: 300,
        notes_per_case: 20,
        persons_per_case: 8,
        long_case_notes: 0,
    };
    /// The benchmark size: 2,000 cases, 100,000 notes, 20,000 persons.
    pub const BENCH: DemoSize = DemoSize {
        cases: 2_000,
        notes_per_case: 50,
        persons_per_case: 10,
        long_case_notes: 3_000,
    };
}

/// What was generated.
#[derive(Clone, Debug, Default)]
pub struct DemoSummary {
    pub teams: usize,
    pub staff: usize,
    pub cases: usize,
    pub persons: usize,
    pub notes: usize,
    pub consents: usize,
    pub agreements: usize,
    pub worker_name: String,
    /// The child's name on the case with the long history, if one was made.
    pub long_case: Option<String>,
}

/// The staff of the demo municipality, decided before the store exists so that the store can
/// be created for the signed-in worker.
pub struct DemoStaff {
    pub teams: Vec<Team>,
    pub staff: Vec<(Staff, usize)>,
}

impl DemoStaff {
    /// The signed-in worker: the first caseworker of the first team.
    pub fn worker(&self) -> &Staff {
        &self.staff[0].0
    }

    /// The demo municipality: one team of eight in each of the eleven districts (88 staff).
    pub fn new(seed: u64) -> DemoStaff {
        DemoStaff::sized(seed, &Municipality::DEMO)
    }

    /// A municipality of `m.staff` staff in `m.teams` cross-disciplinary teams spread over
    /// `m.districts` districts (clusters); each team has the same mix of professions, led by
    /// caseworkers. The first caseworker of the first team is the signed-in worker.
    pub fn sized(seed: u64, m: &Municipality) -> DemoStaff {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_57af);
        let mut teams = Vec::new();
        let mut staff = Vec::new();
        let line_up = [
            (Profession::Caseworker, StaffSector::SocialServices),
            (Profession::Caseworker, StaffSector::SocialServices),
            (Profession::Caseworker, StaffSector::SocialServices),
            (Profession::Psychologist, StaffSector::SchoolsDaycare),
            (Profession::HealthVisitor, StaffSector::SchoolsDaycare),
            (Profession::Educator, StaffSector::SchoolsDaycare),
            (Profession::SpecialEducator, StaffSector::SocialServices),
            (Profession::Leader, StaffSector::SchoolsDaycare),
        ];
        let team_count = m.teams.max(1);
        let districts = m.districts.clamp(1, team_count);
        for t in 0..team_count {
            let d = t % districts;
            let district = if districts <= DISTRICTS.len() {
                DISTRICTS[d].to_owned()
            } else {
                format!(
                    "{} {}",
                    DISTRICTS[d % DISTRICTS.len()],
                    d / DISTRICTS.len() + 1
                )
            };
            // The first team of each district is named after it; more teams there are numbered.
            let name = match t / districts {
                0 => format!("Tværgående team {district}"),
                n => format!("Tværgående team {district} {}", n + 1),
            };
            teams.push(Team {
                id: TeamId::new(),
                name,
                district,
            });
            // Staff spread evenly; the first teams take the remainder.
            let size = (m.staff / team_count + usize::from(t < m.staff % team_count)).max(1);
            for i in 0..size {
                let (profession, sector) = line_up[i % line_up.len()];
                let (first, last) = (
                    text::adult_first(&mut rng),
                    text::pick(&mut rng, text::SURNAMES),
                );
                let initials: String = first
                    .chars()
                    .take(1)
                    .chain(last.chars().take(2))
                    .collect::<String>()
                    .to_uppercase();
                staff.push((
                    Staff {
                        id: StaffId::new(),
                        name: format!("{first} {last}"),
                        initials,
                        profession,
                        sector,
                    },
                    t,
                ));
            }
        }
        DemoStaff { teams, staff }
    }
}

/// How large a municipality's staff is.
#[derive(Clone, Debug)]
pub struct Municipality {
    pub staff: usize,
    pub teams: usize,
    /// Districts (clusters of teams).
    pub districts: usize,
}

impl Municipality {
    /// The demo's: eleven teams of eight, one per district.
    pub const DEMO: Municipality = Municipality {
        staff: 88,
        teams: 11,
        districts: 11,
    };
    /// Aarhus's size (`make bench-scale`): 2,000 staff in 30 district teams and 6 clusters.
    pub const AARHUS: Municipality = Municipality {
        staff: 2_000,
        teams: 30,
        districts: 6,
    };
}

/// Where generated records go: a device's store through its writer (every rule checked, the
/// change log written), or straight out as records for a bulk load on the service.
pub trait Sink {
    /// The next writes are this staff member's.
    fn act_as(&mut self, staff: StaffId);
    /// A record as it stands (new, or a colleague's as sync delivers it).
    fn put<T: Record>(&mut self, record: &T) -> feltkontor_core::Result<()>;
    fn put_team(&mut self, t: &Team) -> feltkontor_core::Result<()> {
        self.put(t)
    }
    fn put_staff(&mut self, s: &Staff) -> feltkontor_core::Result<()> {
        self.put(s)
    }
    fn add_team_member(&mut self, team: TeamId, staff: StaffId) -> feltkontor_core::Result<()> {
        self.put(&TeamMember {
            id: RowId::new(),
            team_id: team,
            staff_id: staff,
        })
    }
    fn open_case(&mut self, c: &Case) -> feltkontor_core::Result<()> {
        self.put(c)
    }
    fn add_participant(&mut self, p: &Participant) -> feltkontor_core::Result<()> {
        self.put(p)
    }
    fn put_person(&mut self, p: &Person) -> feltkontor_core::Result<()> {
        self.put(p)
    }
    fn add_phone(&mut self, p: &Phone) -> feltkontor_core::Result<()> {
        self.put(p)
    }
    fn add_relation(&mut self, r: &Relation) -> feltkontor_core::Result<()> {
        self.put(r)
    }
    fn record_consent(&mut self, c: &Consent) -> feltkontor_core::Result<()> {
        self.put(c)
    }
    /// `c` withdrawn now.
    fn withdraw_consent(
        &mut self,
        c: &Consent,
        now: OffsetDateTime,
    ) -> feltkontor_core::Result<()> {
        let mut c = c.clone();
        c.withdrawn_at = Some(normalize_timestamp(now));
        self.put(&c)
    }
    fn put_appointment(&mut self, a: &Appointment) -> feltkontor_core::Result<()> {
        self.put(a)
    }
    fn put_agreement(&mut self, a: &Agreement) -> feltkontor_core::Result<()> {
        self.put(a)
    }
    /// The case had a colleague's change since the worker last looked (a device's own mark).
    fn mark_changed_by_colleague(&mut self, _case: CaseId) -> feltkontor_core::Result<()> {
        Ok(())
    }
}

impl Sink for Writer<'_> {
    fn act_as(&mut self, staff: StaffId) {
        Writer::act_as(self, staff)
    }
    fn put<T: Record>(&mut self, record: &T) -> feltkontor_core::Result<()> {
        Writer::put(self, record).map(|_| ())
    }
    fn put_team(&mut self, t: &Team) -> feltkontor_core::Result<()> {
        Writer::put_team(self, t).map(|_| ())
    }
    fn put_staff(&mut self, s: &Staff) -> feltkontor_core::Result<()> {
        Writer::put_staff(self, s).map(|_| ())
    }
    fn add_team_member(&mut self, team: TeamId, staff: StaffId) -> feltkontor_core::Result<()> {
        Writer::add_team_member(self, team, staff).map(|_| ())
    }
    fn open_case(&mut self, c: &Case) -> feltkontor_core::Result<()> {
        Writer::open_case(self, c)
    }
    fn add_participant(&mut self, p: &Participant) -> feltkontor_core::Result<()> {
        Writer::add_participant(self, p).map(|_| ())
    }
    fn put_person(&mut self, p: &Person) -> feltkontor_core::Result<()> {
        Writer::put_person(self, p).map(|_| ())
    }
    fn add_phone(&mut self, p: &Phone) -> feltkontor_core::Result<()> {
        Writer::add_phone(self, p).map(|_| ())
    }
    fn add_relation(&mut self, r: &Relation) -> feltkontor_core::Result<()> {
        Writer::add_relation(self, r).map(|_| ())
    }
    fn record_consent(&mut self, c: &Consent) -> feltkontor_core::Result<()> {
        Writer::record_consent(self, c).map(|_| ())
    }
    fn withdraw_consent(
        &mut self,
        c: &Consent,
        _now: OffsetDateTime,
    ) -> feltkontor_core::Result<()> {
        Writer::withdraw_consent(self, c.id).map(|_| ())
    }
    fn put_appointment(&mut self, a: &Appointment) -> feltkontor_core::Result<()> {
        Writer::put_appointment(self, a).map(|_| ())
    }
    fn put_agreement(&mut self, a: &Agreement) -> feltkontor_core::Result<()> {
        Writer::put_agreement(self, a).map(|_| ())
    }
    fn mark_changed_by_colleague(&mut self, case: CaseId) -> feltkontor_core::Result<()> {
        Writer::mark_changed_by_colleague(self, case)
    }
}

/// A [`Sink`] that hands each record on as its kind, id and fields (what a device's change
/// log would carry for a new record), for a bulk load.
pub struct Records<F: FnMut(EntityKind, uuid::Uuid, serde_json::Map<String, serde_json::Value>)>(
    pub F,
);

impl<F: FnMut(EntityKind, uuid::Uuid, serde_json::Map<String, serde_json::Value>)> Sink
    for Records<F>
{
    fn act_as(&mut self, _staff: StaffId) {}
    fn put<T: Record>(&mut self, record: &T) -> feltkontor_core::Result<()> {
        match serde_json::to_value(record) {
            Ok(serde_json::Value::Object(map)) => {
                (self.0)(T::KIND, record.uuid(), map);
                Ok(())
            }
            Ok(_) => Err(feltkontor_core::Error::Corrupt(
                "a record is an object".into(),
            )),
            Err(e) => Err(feltkontor_core::Error::Corrupt(e.to_string())),
        }
    }
}

fn fake_cpr(birth: Date) -> Cpr {
    let s = format!(
        "{:02}{:02}{:02}-9999",
        birth.day(),
        u8::from(birth.month()),
        birth.year() % 100
    );
    Cpr::parse(&s).expect("demo CPR is well-formed")
}

fn days_between(rng: &mut StdRng, from: Date, to: Date) -> Date {
    let span = (to - from).whole_days().max(0);
    from + Duration::days(rng.gen_range(0..=span))
}

/// Fills `store` (created for `people.worker()`) with a demo municipality. `now` anchors the
/// dates; the same seed gives the same data.
pub fn generate(
    store: &mut Store,
    people: &DemoStaff,
    size: &DemoSize,
    seed: u64,
    now: OffsetDateTime,
    mut progress: impl FnMut(usize, usize),
) -> feltkontor_core::Result<DemoSummary> {
    let mut rng = StdRng::seed_from_u64(seed);
    let worker = people.worker().clone();
    let mut summary = DemoSummary {
        worker_name: worker.name.clone(),
        ..Default::default()
    };
    store.write(|w| {
        for t in &people.teams {
            w.put_team(t)?;
        }
        for (s, team) in &people.staff {
            w.put_staff(s)?;
            w.add_team_member(people.teams[*team].id, s.id)?;
        }
        Ok(())
    })?;
    summary.teams = people.teams.len();
    summary.staff = people.staff.len();
    let today = now.date();
    for i in 0..size.cases {
        // The worker's own team gets a larger share so "my cases" has content at every size.
        let team_ix = if i % 4 == 0 {
            0
        } else {
            rng.gen_range(0..people.teams.len())
        };
        let team_staff: Vec<&Staff> = people
            .staff
            .iter()
            .filter(|(_, t)| *t == team_ix)
            .map(|(s, _)| s)
            .collect();
        store.write(|w| {
            let s = generate_case(
                w,
                &mut rng,
                team_ix,
                people,
                &team_staff,
                &worker,
                size,
                now,
                today,
                i,
            )?;
            summary.persons += s.0;
            summary.notes += s.1;
            summary.consents += s.2;
            summary.agreements += s.3;
            if i == 0 && size.long_case_notes > 0 {
                summary.long_case = Some(s.4);
            }
            Ok(())
        })?;
        summary.cases += 1;
        progress(i + 1, size.cases);
    }
    Ok(summary)
}

/// A municipality's records for a bulk load on the service, handed to `out` as they are made
/// (nothing is kept in memory): the teams, staff and memberships of `people`, then
/// `size.cases` cases spread evenly over the teams, each made as [`generate`] makes one. The
/// worker (`people.worker()`, in the first team) also takes part in cases of the other teams
/// until `worker_scope` cases are in their scope. The same seed gives the same data.
pub fn generate_records(
    people: &DemoStaff,
    size: &DemoSize,
    seed: u64,
    now: OffsetDateTime,
    worker_scope: usize,
    out: impl FnMut(EntityKind, uuid::Uuid, serde_json::Map<String, serde_json::Value>),
) -> feltkontor_core::Result<DemoSummary> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sink = Records(out);
    let worker = people.worker().clone();
    let mut summary = DemoSummary {
        worker_name: worker.name.clone(),
        teams: people.teams.len(),
        staff: people.staff.len(),
        ..Default::default()
    };
    for t in &people.teams {
        sink.put_team(t)?;
    }
    for (s, team) in &people.staff {
        sink.put_staff(s)?;
        sink.add_team_member(people.teams[*team].id, s.id)?;
    }
    let mut by_team: Vec<Vec<&Staff>> = vec![Vec::new(); people.teams.len()];
    for (s, t) in &people.staff {
        by_team[*t].push(s);
    }
    let teams = people.teams.len();
    let own_team_cases = size.cases / teams + usize::from(size.cases % teams > 0);
    let mut joined = 0;
    let today = now.date();
    for i in 0..size.cases {
        let team_ix = i % teams;
        let (persons, notes, consents, agreements, child, case) = generate_case(
            &mut sink,
            &mut rng,
            team_ix,
            people,
            &by_team[team_ix],
            &worker,
            size,
            now,
            today,
            i,
        )?;
        if team_ix != 0 && own_team_cases + joined < worker_scope {
            sink.add_participant(&Participant {
                id: RowId::new(),
                case_id: case,
                staff_id: worker.id,
                role: text::role(worker.profession).to_owned(),
                legal_basis: None,
            })?;
            joined += 1;
        }
        summary.persons += persons;
        summary.notes += notes;
        summary.consents += consents;
        summary.agreements += agreements;
        if i == 0 && size.long_case_notes > 0 {
            summary.long_case = Some(child);
        }
        summary.cases += 1;
    }
    Ok(summary)
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site, every argument distinct"
)]
fn generate_case(
    w: &mut impl Sink,
    rng: &mut StdRng,
    team_ix: usize,
    people: &DemoStaff,
    team_staff: &[&Staff],
    worker: &Staff,
    size: &DemoSize,
    now: OffsetDateTime,
    today: Date,
    index: usize,
) -> feltkontor_core::Result<(usize, usize, usize, usize, String, CaseId)> {
    let team = &people.teams[team_ix];
    let age_years = rng.gen_range(1..17);
    let birth = today - Duration::days(age_years * 365 + rng.gen_range(0..365));
    let girl = rng.gen_bool(0.5);
    let surname = text::pick(rng, text::SURNAMES);
    let child_first = if girl {
        text::pick(rng, text::GIRLS)
    } else {
        text::pick(rng, text::BOYS)
    };
    let opened = days_between(
        rng,
        (today - Duration::days(700)).max(birth + Duration::days(30)),
        today - Duration::days(14),
    );
    let concern = opened - Duration::days(rng.gen_range(0..60));
    let concern = concern.max(birth);
    let leads: Vec<&Staff> = team_staff
        .iter()
        .copied()
        .filter(|s| {
            matches!(
                s.profession,
                Profession::Caseworker | Profession::Psychologist | Profession::Leader
            )
        })
        .collect();
    // In the worker's team: a third coordinated by the worker, a third with the worker taking part.
    let coordinator = if team_ix == 0 && index % 3 == 0 {
        worker
    } else {
        leads[rng.gen_range(0..leads.len())]
    };
    let institution = if age_years < 6 {
        text::pick(rng, text::DAYCARES)
    } else {
        text::pick(rng, text::SCHOOLS)
    };
    let case = Case {
        id: CaseId::new(),
        team_id: team.id,
        child_name: format!("{child_first} {surname}"),
        child_birth_date: birth,
        child_cpr: rng.gen_bool(0.8).then(|| fake_cpr(birth)),
        child_institution: Some(institution.to_owned()),
        status: CaseStatus::Open,
        closed_reason: None,
        coordinator_id: coordinator.id,
        opened_on: opened,
        first_concern_on: Some(concern),
        first_meeting_on: Some(opened + Duration::days(rng.gen_range(1..21))),
    };
    // Each case is written as its coordinator would have written it on their own device.
    w.act_as(coordinator.id);
    w.open_case(&case)?;
    let mut participants: Vec<&Staff> = vec![coordinator];
    let wanted = rng.gen_range(2..5);
    let mut pool: Vec<&Staff> = team_staff.to_vec();
    if team_ix == 0 && index % 3 == 1 && coordinator.id != worker.id {
        pool.retain(|s| s.id != worker.id);
        pool.insert(0, worker);
    } else {
        pool.shuffle(rng);
    }
    for s in pool {
        if participants.len() > wanted || participants.iter().any(|p| p.id == s.id) {
            continue;
        }
        w.add_participant(&Participant {
            id: RowId::new(),
            case_id: case.id,
            staff_id: s.id,
            role: text::role(s.profession).to_owned(),
            // Consent is recorded with the family later in the case's life; until then the
            // cross-sector participants take part on a recorded legal basis.
            legal_basis: rules::consent_sector(s.profession).map(|_| {
                feltkontor_core::domain::legal_basis::LegalBasis::CrossSectorExchange
                    .compose("Nødvendigt for at støtte barnets trivsel i samarbejde med skolen")
            }),
        })?;
        participants.push(s);
    }

    let mut persons = Vec::new();
    let relations = text::family_shape(rng, size.persons_per_case);
    for relation in relations {
        let (name, custody) = text::person_name(rng, relation, surname);
        let protected = rng.gen_bool(0.05);
        let interpreter = rng.gen_bool(0.08);
        let dnc = rng.gen_bool(0.03);
        let person = Person {
            id: PersonId::new(),
            case_id: case.id,
            name,
            relation,
            custody,
            email: rng
                .gen_bool(0.5)
                .then(|| format!("demo{}@example.dk", rng.gen_range(1000..999_999))),
            address: Some(text::address(rng).into()),
            protected_address: protected,
            language: Some(
                if interpreter {
                    text::pick(rng, text::LANGUAGES)
                } else {
                    "dansk"
                }
                .to_owned(),
            ),
            interpreter_needed: interpreter,
            do_not_contact: dnc,
            do_not_contact_reason: dnc.then(|| "Kontakt kun via advokat".to_owned()),
        };
        w.put_person(&person)?;
        if rng.gen_bool(0.8) {
            w.add_phone(&Phone {
                id: RowId::new(),
                case_id: case.id,
                person_id: person.id,
                number: format!(
                    "+45 {} {:02} {:02} {:02}",
                    rng.gen_range(20..99),
                    rng.gen_range(0..99),
                    rng.gen_range(0..99),
                    rng.gen_range(0..99)
                ),
                label: Some("mobil".into()),
            })?;
        }
        // The relation as first met, and for some a later change, so the network has history.
        let mut history = vec![(
            *[
                RelationQuality::Supportive,
                RelationQuality::Neutral,
                RelationQuality::Strained,
            ]
            .choose(rng)
            .unwrap_or(&RelationQuality::Neutral),
            concern,
        )];
        if rng.gen_bool(0.2) {
            let later = *RelationQuality::ALL
                .choose(rng)
                .unwrap_or(&RelationQuality::Neutral);
            history.push((later, days_between(rng, concern, today)));
        }
        for (quality, as_of) in history {
            w.add_relation(&Relation {
                id: RowId::new(),
                case_id: case.id,
                from_person_id: None,
                to_person_id: person.id,
                quality,
                as_of,
            })?;
        }
        persons.push(person);
    }

    let parents: Vec<&Person> = persons.iter().filter(|p| p.custody).collect();
    let mut consents = 0;
    if let Some(parent) = parents.first() {
        let all = [
            ConsentSector::School,
            ConsentSector::Ppr,
            ConsentSector::HealthVisitor,
            ConsentSector::Daycare,
            ConsentSector::SocialServices,
        ];
        let sectors: BTreeSet<ConsentSector> =
            all.iter().copied().filter(|_| rng.gen_bool(0.6)).collect();
        let sectors = if sectors.is_empty() {
            BTreeSet::from([ConsentSector::School])
        } else {
            sectors
        };
        // A realistic mix of states today: most valid, some about to run out, some expired
        // and not yet renewed, a few given for a later start, a few withdrawn, and some cases
        // with none at all.
        // By the case's number, not the random stream: every caseload of a few dozen cases
        // holds each state, however the rest of the generator changes.
        let roll = (index * 53 + 17) % 100;
        let (from, to) = match roll {
            0..=44 | 88..=94 => {
                let to = today + Duration::days(rng.gen_range(31..330));
                (to - Duration::days(365), to)
            }
            45..=59 => {
                let to = today + Duration::days(rng.gen_range(0..30));
                (to - Duration::days(365), to)
            }
            60..=79 => {
                let to = today - Duration::days(rng.gen_range(1..200));
                (to - Duration::days(365), to)
            }
            80..=87 => {
                let from = today + Duration::days(rng.gen_range(1..21));
                (from, from + Duration::days(365))
            }
            _ => (today, today),
        };
        if roll < 95 {
            let consent = Consent {
                id: ConsentId::new(),
                case_id: case.id,
                given_by: parent.id,
                sectors,
                valid_from: from.max(birth),
                valid_to: Some(to),
                withdrawn_at: None,
            };
            w.record_consent(&consent)?;
            consents += 1;
            if (88..=94).contains(&roll) {
                w.withdraw_consent(&consent, now)?;
            }
        }
    }

    // A planned visit in the coming week on a third of the cases (from tomorrow: one planned for
    // earlier today would already be past, and waiting for its note, when the demo is opened in
    // the evening), and on another third a meeting held yesterday whose note is not written yet.
    if index % 3 != 2 {
        let held = index % 3 == 1;
        let day = if held {
            today - Duration::days(1)
        } else {
            today + Duration::days(rng.gen_range(1..7))
        };
        let starts_at = day
            .with_hms(rng.gen_range(8..16), [0, 30][rng.gen_range(0..2)], 0)
            .unwrap_or(day.midnight())
            .assume_utc();
        w.put_appointment(&Appointment {
            id: AppointmentId::new(),
            case_id: case.id,
            kind: if held {
                AppointmentKind::NetworkMeeting
            } else {
                AppointmentKind::HomeVisit
            },
            starts_at,
            place: if held {
                "Familiehuset".to_owned()
            } else {
                "Hjemme hos familien".to_owned()
            },
            invited_persons: parents.iter().map(|p| p.id).collect(),
            invited_staff: [worker.id].into(),
            note_id: None,
            cancelled: false,
        })?;
    }

    let mut agreements = 0;
    for _ in 0..rng.gen_range(1..4) {
        let by_family = rng.gen_bool(0.5) && !parents.is_empty();
        let what = text::pick(
            rng,
            if by_family {
                text::FAMILY_AGREEMENTS
            } else {
                text::STAFF_AGREEMENTS
            },
        );
        w.put_agreement(&Agreement {
            id: AgreementId::new(),
            case_id: case.id,
            what: what.to_owned(),
            responsible_staff_id: (!by_family)
                .then(|| participants[rng.gen_range(0..participants.len())].id),
            responsible_person_id: by_family.then(|| parents[0].id),
            due_on: Some(days_between(
                rng,
                today - Duration::days(30),
                today + Duration::days(90),
            )),
            done_at: rng.gen_bool(0.3).then_some(now),
        })?;
        agreements += 1;
    }

    let start = opened.midnight().assume_utc();
    let span = (now - start).whole_minutes().max(60);
    let n_notes = if index == 0 && size.long_case_notes > 0 {
        size.long_case_notes
    } else {
        rng.gen_range(size.notes_per_case * 3 / 4..=size.notes_per_case * 5 / 4)
            .max(1)
    };
    let child_name = child_first;
    for _ in 0..n_notes {
        let author = participants[rng.gen_range(0..participants.len())];
        let kind = *NoteKind::ALL.choose(rng).unwrap_or(&NoteKind::Other);
        let occurred = start + Duration::minutes(rng.gen_range(0..span));
        let occurred = occurred.replace_time(
            time::Time::from_hms(
                rng.gen_range(8..17),
                [0, 15, 30, 45][rng.gen_range(0..4)],
                0,
            )
            .unwrap_or(time::Time::MIDNIGHT),
        );
        let occurred = occurred.min(now - Duration::hours(1));
        let own_discipline = author.profession == Profession::HealthVisitor && rng.gen_bool(0.5);
        let mut note = CaseNote {
            id: NoteId::new(),
            case_id: case.id,
            author_id: author.id,
            kind,
            occurred_at: normalize_timestamp(occurred),
            body: text::note_body(rng, kind, child_name).into(),
            child_words: if rng.gen_bool(0.4) {
                text::child_words(rng).into()
            } else {
                SensitiveText::default()
            },
            family_perspective: if rng.gen_bool(0.4) {
                text::family_perspective(rng).into()
            } else {
                SensitiveText::default()
            },
            statutory: rng.gen_bool(0.6),
            audience: if own_discipline {
                Audience::OwnDiscipline
            } else {
                Audience::CaseTeam
            },
            status: NoteStatus::Draft,
            signed_at: None,
            content_hash: None,
            addendum_to: None,
        };
        note.validate(now)?;
        if rng.gen_bool(0.85) {
            note.status = NoteStatus::Signed;
            note.signed_at = Some(
                normalize_timestamp(occurred + Duration::hours(2)).min(normalize_timestamp(now)),
            );
            note.content_hash = Some(rules::content_hash(&note));
        }
        // Colleagues' notes arrive as sync delivers them: written as they are.
        w.put(&note)?;
    }
    // Some cases had a colleague's change since the worker last looked.
    if rng.gen_bool(0.2) {
        w.mark_changed_by_colleague(case.id)?;
    }
    Ok((
        persons.len(),
        n_notes,
        consents,
        agreements,
        case.child_name.clone(),
        case.id,
    ))
}
