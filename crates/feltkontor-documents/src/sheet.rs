//! The home-visit sheet as a document: what the worker needs on the doorstep, in Danish.
//! The labels are the app's own (a test checks them against the UI's Danish catalogue).

use crate::{Doc, Section, Table};
use feltkontor_core::domain::*;
use feltkontor_core::store::sheet::{SheetWarning, VisitSheet};
use feltkontor_wire::*;
use time::{Date, OffsetDateTime, UtcOffset};

pub(crate) fn relation(r: RelationToChild) -> &'static str {
    match r {
        RelationToChild::Mother => "Mor",
        RelationToChild::Father => "Far",
        RelationToChild::StepParent => "Bonusforælder",
        RelationToChild::FosterParent => "Plejeforælder",
        RelationToChild::Sibling => "Søskende",
        RelationToChild::Grandparent => "Bedsteforælder",
        RelationToChild::OtherFamily => "Anden familie",
        RelationToChild::FriendNeighbour => "Ven eller nabo",
        RelationToChild::Teacher => "Lærer",
        RelationToChild::DaycareEducator => "Pædagog i dagtilbud",
        RelationToChild::OtherProfessional => "Anden fagperson",
    }
}

pub(crate) fn appointment_kind(k: AppointmentKind) -> &'static str {
    match k {
        AppointmentKind::HomeVisit => "Hjemmebesøg",
        AppointmentKind::Meeting => "Møde",
        AppointmentKind::NetworkMeeting => "Netværksmøde",
    }
}

pub(crate) fn note_kind(k: NoteKind) -> &'static str {
    match k {
        NoteKind::HomeVisit => "Hjemmebesøg",
        NoteKind::Meeting => "Møde",
        NoteKind::PhoneCall => "Telefonsamtale",
        NoteKind::SchoolDaycareVisit => "Besøg i skole/dagtilbud",
        NoteKind::NetworkMeeting => "Netværksmøde",
        NoteKind::Other => "Andet",
    }
}

pub(crate) fn consent_state(s: Option<ConsentState>) -> &'static str {
    match s {
        Some(ConsentState::Valid) => "Gyldigt",
        Some(ConsentState::ExpiresSoon) => "Udløber snart",
        Some(ConsentState::Expired) => "Udløbet",
        Some(ConsentState::NotYetValid) => "Ikke gyldigt endnu",
        Some(ConsentState::Withdrawn) => "Trukket tilbage",
        None => "Intet samtykke",
    }
}

pub(crate) fn sector(s: ConsentSector) -> &'static str {
    match s {
        ConsentSector::SocialServices => "Socialforvaltningen",
        ConsentSector::School => "Skole",
        ConsentSector::Ppr => "PPR",
        ConsentSector::HealthVisitor => "Sundhedspleje",
        ConsentSector::Daycare => "Dagtilbud",
    }
}

const MONTHS: [&str; 12] = [
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag",
];

/// "8. december 2026".
pub(crate) fn date_da(d: Date) -> String {
    format!(
        "{}. {} {}",
        d.day(),
        MONTHS[d.month() as usize - 1],
        d.year()
    )
}

/// "tirsdag 8. december 2026 kl. 10.00", in the worker's local time.
pub(crate) fn when_da(t: OffsetDateTime, offset: UtcOffset) -> String {
    let t = t.to_offset(offset);
    format!(
        "{} {} kl. {:02}.{:02}",
        WEEKDAYS[t.weekday().number_days_from_monday() as usize],
        date_da(t.date()),
        t.hour(),
        t.minute()
    )
}

fn or_none(v: &str) -> String {
    if v.trim().is_empty() {
        "–".into()
    } else {
        v.into()
    }
}

/// The sheet as a printable document. `offset` is the worker's UTC offset at the visit.
pub fn visit_sheet(s: &VisitSheet, offset: UtcOffset) -> Doc {
    let a = &s.appointment;
    let mut lead = vec![
        format!("{}: {}", "Tidspunkt", when_da(a.starts_at, offset)),
        format!(
            "{}: {}",
            "Sted",
            if s.place_protected {
                "Beskyttet adresse (står ikke på arket)".to_owned()
            } else {
                or_none(&a.place)
            }
        ),
        format!(
            "{}: {}, født {}",
            "Barnet",
            s.child_name,
            date_da(s.child_birth_date)
        ),
    ];
    if let Some(i) = s.child_institution.as_deref().filter(|i| !i.is_empty()) {
        lead.push(format!("Skole eller dagtilbud: {i}"));
    }
    if let Some(c) = &s.coordinator {
        lead.push(format!("Tovholder: {}", c.name));
    }
    if a.cancelled {
        lead.push("AFLYST".into());
    }
    let mut sections = Vec::new();

    let mut warnings = Section::new("Vær opmærksom på");
    for w in &s.warnings {
        warnings = match w {
            SheetWarning::DoNotContact { person, reason } => warnings.warning(match reason {
                Some(r) => format!("Advarsel: {person} må ikke kontaktes ({r})."),
                None => format!("Advarsel: {person} må ikke kontaktes."),
            }),
            SheetWarning::Interpreter { person, language } => warnings.warning(match language {
                Some(l) => format!("Tolk: {person} har brug for tolk ({l})."),
                None => format!("Tolk: {person} har brug for tolk."),
            }),
            SheetWarning::ProtectedAddress { person } => warnings.warning(format!(
                "Beskyttet adresse: adressen for {person} står ikke på arket og må ikke nævnes."
            )),
        };
    }
    if s.warnings.is_empty() {
        warnings = warnings.para("Ingen advarsler er registreret.");
    }
    sections.push(warnings);

    let mut who = Section::new("Hvem bor hvor");
    let mut rows = Vec::new();
    for h in &s.households {
        let place = match (&h.address, h.protected) {
            (_, true) => "Beskyttet adresse".to_owned(),
            (Some(a), false) => a.clone(),
            (None, false) => "Ingen adresse registreret".to_owned(),
        };
        for p in &h.persons {
            let mut role = relation(p.relation).to_owned();
            if p.custody {
                role.push_str(", forældremyndighed");
            }
            if p.invited {
                role.push_str(", inviteret");
            }
            rows.push(vec![
                place.clone(),
                p.name.clone(),
                role,
                or_none(&p.phones.join(", ")),
            ]);
        }
    }
    if rows.is_empty() {
        who = who.para("Ingen personer er registreret i netværket.");
    } else {
        who.table = Some(Table {
            header: vec![
                "Adresse".into(),
                "Navn".into(),
                "Relation".into(),
                "Telefon".into(),
            ],
            widths: vec![3, 3, 3, 2],
            rows,
        });
    }
    sections.push(who);

    if !s.invited_staff.is_empty() {
        let mut staff = Section::new("Fagpersoner inviteret");
        staff.items = s.invited_staff.iter().map(|p| p.name.clone()).collect();
        sections.push(staff);
    }

    let mut agreements = Section::new("Åbne aftaler");
    if s.agreements.is_empty() {
        agreements = agreements.para("Ingen åbne aftaler.");
    } else {
        agreements.table = Some(Table {
            header: vec!["Aftale".into(), "Ansvarlig".into(), "Frist".into()],
            widths: vec![5, 3, 2],
            rows: s
                .agreements
                .iter()
                .map(|a| {
                    vec![
                        a.what.clone(),
                        or_none(&a.responsible),
                        match a.due_on {
                            Some(d) if a.overdue => format!("{} (overskredet)", date_da(d)),
                            Some(d) => date_da(d),
                            None => "Ingen frist".into(),
                        },
                    ]
                })
                .collect(),
        });
    }
    sections.push(agreements);

    let mut consent = Section::new("Samtykke");
    consent = consent.para(format!("Samlet: {}", consent_state(s.consent)));
    consent.items = s
        .consents
        .iter()
        .map(|c| {
            let sectors: Vec<&str> = c.sectors.iter().map(|&x| sector(x)).collect();
            let until = c
                .valid_to
                .map(|d| format!(", til {}", date_da(d)))
                .unwrap_or_default();
            format!(
                "{}: givet af {} til {}{until}",
                consent_state(Some(c.state)),
                or_none(&c.given_by),
                sectors.join(", ")
            )
        })
        .collect();
    sections.push(consent);

    let mut words = Section::new("Barnets egne ord");
    for w in &s.child_words {
        words = words.para(format!(
            "{}: »{}«",
            date_da(w.occurred_at.to_offset(offset).date()),
            w.text.as_str()
        ));
    }
    if s.child_words.is_empty() {
        words = words.para("Ingen notater har barnets egne ord endnu.");
    }
    sections.push(words);

    let mut notes = Section::new("Seneste notater");
    for n in &s.latest_notes {
        let author = n.author.as_ref().map(|a| a.name.as_str()).unwrap_or("");
        // Said in words: a draft is not the case's record yet, and a note for one discipline
        // must not be shown around at a network meeting.
        let mut marks = Vec::new();
        if n.status == NoteStatus::Draft {
            marks.push("kladde, ikke underskrevet");
        }
        if n.audience == Audience::OwnDiscipline {
            marks.push("kun egen faggruppe");
        }
        notes = notes.para(format!(
            "{}, {}{}{}: {}",
            date_da(n.occurred_at.to_offset(offset).date()),
            note_kind(n.kind),
            if author.is_empty() {
                String::new()
            } else {
                format!(", {author}")
            },
            if marks.is_empty() {
                String::new()
            } else {
                format!(" ({})", marks.join("; "))
            },
            n.preview.as_str()
        ));
    }
    if s.latest_notes.is_empty() {
        notes = notes.para("Ingen notater endnu.");
    }
    sections.push(notes);

    Doc {
        title: format!("Besøgsark: {} – {}", appointment_kind(a.kind), s.child_name),
        author: "Feltkontor".into(),
        lang: "da".into(),
        lead,
        sections,
        // On every page: a loose page says whose visit it belongs to.
        footer: format!(
            "Besøgsark for {}, {}. Fortroligt. Udskrevet {} fra Feltkontor. Makuleres efter besøget.",
            s.child_name,
            date_da(a.starts_at.to_offset(offset).date()),
            when_da(s.prepared_at, offset)
        ),
    }
}
