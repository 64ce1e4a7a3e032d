//! The home-visit sheet as a PDF: tagged and accessible, with every word the worker needs, text
//! printed exactly as typed (never run as Typst code), and no protected address.

use feltkontor_core::domain::*;
use feltkontor_core::store::queries::{ChildWords, NoteSummary, StaffRef};
use feltkontor_core::store::sheet::*;
use feltkontor_documents::{render_pdf, visit_sheet};
use feltkontor_wire::*;
use std::process::Command;
use time::macros::{date, datetime, offset};

fn sheet(note_text: &str) -> VisitSheet {
    let case_id = CaseId::new();
    let staff = StaffRef {
        id: StaffId::new(),
        name: "Mette Kjær".into(),
        initials: "MK".into(),
    };
    let father = SheetPerson {
        id: PersonId::new(),
        name: "Kasper Åberg".into(),
        relation: RelationToChild::Father,
        custody: true,
        phones: vec!["20 30 40 50 (mobil)".into()],
        invited: true,
    };
    let mother = SheetPerson {
        id: PersonId::new(),
        name: "Lina Åberg".into(),
        relation: RelationToChild::Mother,
        custody: true,
        phones: vec![],
        invited: false,
    };
    VisitSheet {
        appointment: Appointment {
            id: AppointmentId::new(),
            case_id,
            kind: AppointmentKind::HomeVisit,
            starts_at: datetime!(2026-12-08 09:00 UTC),
            place: "Tranehaven 4".into(),
            invited_persons: [father.id].into(),
            invited_staff: [staff.id].into(),
            note_id: None,
            cancelled: false,
        },
        place_protected: false,
        case_id,
        child_name: "Søren Åberg".into(),
        child_birth_date: date!(2015 - 03 - 01),
        child_institution: Some("Ellehøj Skole".into()),
        coordinator: Some(staff.clone()),
        invited_staff: vec![staff.clone()],
        households: vec![
            Household {
                address: Some("Tranehaven 4, 8200 Aarhus N".into()),
                protected: false,
                persons: vec![father],
            },
            Household {
                address: None,
                protected: true,
                persons: vec![mother],
            },
        ],
        warnings: vec![
            SheetWarning::Interpreter {
                person: "Kasper Åberg".into(),
                language: Some("arabisk".into()),
            },
            SheetWarning::ProtectedAddress {
                person: "Lina Åberg".into(),
            },
        ],
        agreements: vec![SheetAgreement {
            what: "Søren får en fast voksen i SFO".into(),
            responsible: "Mette Kjær".into(),
            due_on: Some(date!(2026 - 12 - 01)),
            overdue: true,
        }],
        consent: Some(ConsentState::ExpiresSoon),
        consents: vec![SheetConsent {
            given_by: "Kasper Åberg".into(),
            sectors: vec![ConsentSector::School, ConsentSector::Ppr],
            state: ConsentState::ExpiresSoon,
            valid_to: Some(date!(2026 - 12 - 20)),
        }],
        latest_notes: vec![NoteSummary {
            id: NoteId::new(),
            kind: NoteKind::HomeVisit,
            occurred_at: datetime!(2026-12-01 13:00 UTC),
            author: Some(staff),
            status: NoteStatus::Signed,
            statutory: false,
            audience: Audience::CaseTeam,
            addendum_to: None,
            preview: text::SensitiveText(note_text.into()),
            has_child_words: true,
        }],
        child_words: vec![ChildWords {
            note_id: NoteId::new(),
            occurred_at: datetime!(2026-12-01 13:00 UTC),
            text: text::SensitiveText("Jeg vil gerne spille fodbold med far".into()),
        }],
        prepared_at: datetime!(2026-12-07 08:00 UTC),
    }
}

fn pdftotext(pdf: &[u8]) -> String {
    let dir = tempfile_dir();
    let path = dir.join("sheet.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/install-deps.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fk-pdf-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_sheet_is_a_tagged_pdf_with_the_doorstep_facts() {
    let doc = visit_sheet(&sheet("Far fortalte om ugen."), offset!(+1));
    let (pdf, ua) = feltkontor_documents::render(&doc, date!(2026 - 12 - 07)).unwrap();
    assert!(ua, "Danish text is PDF/UA-1 with the fonts Typst ships");
    assert!(pdf.starts_with(b"%PDF-"));
    let raw = String::from_utf8_lossy(&pdf);
    // Tagged: a structure tree, marked content, the document's language and title shown.
    for needle in [
        "/StructTreeRoot",
        "/MarkInfo",
        "/Lang",
        "/DisplayDocTitle",
        "pdfuaid",
    ] {
        assert!(raw.contains(needle), "{needle} missing from the PDF");
    }
    let text = pdftotext(&pdf);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "Besøgsark: Hjemmebesøg – Søren Åberg",
        "tirsdag 8. december 2026 kl. 10.00",
        "Tranehaven 4, 8200 Aarhus N",
        "Kasper Åberg",
        "Tolk: Kasper Åberg har brug for tolk (arabisk).",
        "Beskyttet adresse",
        "Søren får en fast voksen i SFO",
        "1. december 2026 (overskredet)",
        "Udløber snart",
        "»Jeg vil gerne spille fodbold med far«",
        "Far fortalte om ugen.",
        "Side 1 af",
    ] {
        assert!(
            flat.contains(needle),
            "{needle:?} not in the PDF's text:\n{text}"
        );
    }
}

/// What a worker typed is printed as typed: Typst markup and code in a note are characters.
#[test]
fn typed_text_is_printed_as_text_never_run_as_typst() {
    let typed = r#"#panic("x") ]  *fed* $x^2$ #read("/etc/passwd") <lbl> @ref \ 50% "citat""#;
    let doc = visit_sheet(&sheet(typed), offset!(+1));
    let pdf = render_pdf(&doc, date!(2026 - 12 - 07)).unwrap();
    let text = pdftotext(&pdf);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        r#"#panic("x")"#,
        "*fed*",
        "$x^2$",
        r#"#read("/etc/passwd")"#,
        "<lbl>",
        "@ref",
    ] {
        assert!(
            flat.contains(needle),
            "{needle:?} not printed as typed:\n{text}"
        );
    }
    assert!(!flat.contains("root:"), "a file was read into the PDF");
}

/// A long note, emoji and right-to-left names lay out (pages break) rather than fail.
#[test]
fn long_text_and_any_script_lay_out() {
    let long = "Langt notat med mange ord. ".repeat(2_000);
    let mut s = sheet(&long);
    s.households[0].persons[0].name = "مريم الحسيني 👨‍👩‍👧".into();
    let doc = visit_sheet(&s, offset!(+1));
    let (pdf, _ua) = feltkontor_documents::render(&doc, date!(2026 - 12 - 07)).unwrap();
    assert!(
        String::from_utf8_lossy(&pdf).contains("/StructTreeRoot"),
        "still tagged"
    );
    let text = pdftotext(&pdf);
    assert!(
        text.contains("Side 2 af"),
        "the long note breaks onto more pages"
    );
    assert!(text.contains("Langt notat med mange ord."));
}

/// The PDF's Danish words are the app's: each label here is in the UI's Danish catalogue.
#[test]
fn labels_match_the_apps_danish_texts() {
    let catalogue = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/i18n.svelte.ts"),
    )
    .unwrap();
    let da = &catalogue[..catalogue.find("const en").unwrap_or(catalogue.len())];
    for (key, label) in feltkontor_documents::labels() {
        let entry = format!("\"{key}\": \"{label}\"");
        assert!(
            da.contains(&entry),
            "the UI's Danish catalogue has no {entry}"
        );
    }
}

/// A draft and a note for one discipline say so on the sheet: it is carried to meetings.
#[test]
fn drafts_and_discipline_notes_are_marked() {
    let mut s = sheet("Min egen vurdering.");
    s.latest_notes[0].status = NoteStatus::Draft;
    s.latest_notes[0].audience = Audience::OwnDiscipline;
    let doc = visit_sheet(&s, offset!(+1));
    let text = doc.words();
    assert!(
        text.contains("(kladde, ikke underskrevet; kun egen faggruppe): Min egen vurdering."),
        "{text}"
    );
}

/// A protected address that was typed as the place is not printed.
#[test]
fn a_protected_place_is_not_printed() {
    let mut s = sheet("Note");
    s.place_protected = true;
    s.appointment.place = String::new();
    let text = visit_sheet(&s, offset!(+1)).words();
    assert!(
        text.contains("Sted: Beskyttet adresse (står ikke på arket)"),
        "{text}"
    );
}
