//! Documents Feltkontor prints, typeset by Typst used as a library into tagged, accessible PDF
//! (PDF/UA-1: a structure tree, a title, the language, table headers).
//!
//! Every document is a [`Doc`]: a title, lead lines and sections of paragraphs, lists and
//! tables, worded here in Danish. One Typst template lays out every `Doc`; the data reaches it
//! as JSON through `sys.inputs`, never as markup, so what a worker typed is printed as typed
//! (a `#` or `]` in a note is a character, not code), and the template reads no file. The
//! fonts are Typst's own, and the machine's font files (regular files of bounded size, read
//! lazily) for scripts Typst's lack; nothing else is read, nothing from the network.

mod sheet;

pub use sheet::visit_sheet;

use serde::Serialize;
use std::sync::OnceLock;
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Dict, IntoValue};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;

const TEMPLATE: &str = include_str!("../templates/document.typ");

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The layout failed (a defect in the template or the data it was given).
    #[error("the document could not be laid out: {0}")]
    Layout(String),
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
}

/// A paragraph; `strong` ones are warnings and stand out in bold (never by colour alone).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Paragraph {
    pub text: String,
    pub strong: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    /// Relative column widths, one per header cell.
    pub widths: Vec<u32>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Section {
    pub heading: String,
    pub paragraphs: Vec<Paragraph>,
    pub items: Vec<String>,
    pub table: Option<Table>,
}

impl Section {
    pub fn new(heading: impl Into<String>) -> Self {
        Section {
            heading: heading.into(),
            paragraphs: Vec::new(),
            items: Vec::new(),
            table: None,
        }
    }

    pub fn para(mut self, text: impl Into<String>) -> Self {
        self.paragraphs.push(Paragraph {
            text: text.into(),
            strong: false,
        });
        self
    }

    pub fn warning(mut self, text: impl Into<String>) -> Self {
        self.paragraphs.push(Paragraph {
            text: text.into(),
            strong: true,
        });
        self
    }
}

/// A document to print.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Doc {
    pub title: String,
    pub author: String,
    /// BCP 47 language of the text ("da").
    pub lang: String,
    pub lead: Vec<String>,
    pub sections: Vec<Section>,
    pub footer: String,
}

impl Doc {
    /// Every word of the document, in order: what a reader of the PDF finds in it.
    pub fn words(&self) -> String {
        let mut out = vec![self.title.clone()];
        out.extend(self.lead.iter().cloned());
        for s in &self.sections {
            out.push(s.heading.clone());
            out.extend(s.paragraphs.iter().map(|p| p.text.clone()));
            out.extend(s.items.iter().cloned());
            if let Some(t) = &s.table {
                out.extend(t.header.iter().cloned());
                out.extend(t.rows.iter().flatten().cloned());
            }
        }
        out.push(self.footer.clone());
        out.join("\n")
    }
}

/// One font: Typst's own (in memory) or one of the machine's, read from disk the first time a
/// document needs it.
struct Slot {
    path: Option<std::path::PathBuf>,
    index: u32,
    font: OnceLock<Option<Font>>,
}

struct Fonts {
    book: LazyHash<FontBook>,
    slots: Vec<Slot>,
}

/// Where the machine keeps its fonts (Linux, Windows, macOS): names in Arabic script, Somali,
/// Tigrinya or an emoji are printed with them when Typst's own fonts lack the glyphs.
fn font_dirs() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = [
        "/usr/share/fonts",
        "/usr/local/share/fonts",
        "C:\\Windows\\Fonts",
        "/System/Library/Fonts",
        "/Library/Fonts",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .collect();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(std::path::Path::new(&home).join(".local/share/fonts"));
        dirs.push(std::path::Path::new(&home).join(".fonts"));
    }
    dirs
}

fn scan(dir: &std::path::Path, depth: u32, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && depth < 6 {
            scan(&path, depth + 1, out);
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            matches!(
                e.to_ascii_lowercase().as_str(),
                "ttf" | "otf" | "ttc" | "otc"
            )
        }) {
            out.push(path);
        }
    }
}

/// The largest font file read (a CJK collection is about 30 MB).
const FONT_FILE_MAX: u64 = 64 * 1024 * 1024;

/// A font file's bytes: a regular file (never a pipe or device, not through a link) of a
/// bounded size.
fn read_font_file(path: &std::path::Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() || meta.len() > FONT_FILE_MAX {
        return None;
    }
    std::fs::read(path).ok()
}

fn fonts() -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut book = FontBook::new();
        let mut slots = Vec::new();
        // Typst's own fonts first: the layout is the same on every machine.
        for data in typst_assets::fonts() {
            for font in Font::iter(Bytes::new(data)) {
                book.push(font.info().clone());
                slots.push(Slot {
                    path: None,
                    index: font.index(),
                    font: OnceLock::from(Some(font)),
                });
            }
        }
        let mut files = Vec::new();
        for dir in font_dirs() {
            scan(&dir, 0, &mut files);
        }
        files.sort();
        for path in files {
            let Some(data) = read_font_file(&path) else {
                continue;
            };
            for (index, info) in typst::text::FontInfo::iter(&data).enumerate() {
                book.push(info);
                slots.push(Slot {
                    path: Some(path.clone()),
                    index: index as u32,
                    font: OnceLock::new(),
                });
            }
        }
        Fonts {
            book: LazyHash::new(book),
            slots,
        }
    })
}

/// The world one document is typeset in: the template, the data, the shipped fonts, and a
/// date fixed by the caller (so the same data makes the same PDF).
struct DocWorld {
    library: LazyHash<Library>,
    main: Source,
    today: Datetime,
}

impl World for DocWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &fonts().book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.main.id() {
            Ok(Bytes::from_string(self.main.clone()))
        } else {
            // The template reads nothing from disk: its data comes through `sys.inputs`.
            Err(FileError::AccessDenied)
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        let slot = fonts().slots.get(index)?;
        slot.font
            .get_or_init(|| {
                let data = read_font_file(slot.path.as_ref()?)?;
                Font::new(Bytes::new(data), slot.index)
            })
            .clone()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        Some(self.today)
    }
}

/// Typesets `doc` into a tagged PDF. It is PDF/UA-1 (checked by the writer) whenever every
/// character can be shown with the fonts at hand; a name in a script no font here covers is
/// still printed (as a placeholder box) in a tagged PDF that does not claim PDF/UA, rather than
/// leaving the worker without the sheet. `date` is the document's date (its metadata).
pub fn render_pdf(doc: &Doc, date: time::Date) -> Result<Vec<u8>, DocumentError> {
    Ok(render(doc, date)?.0)
}

/// As [`render_pdf`], and whether the PDF conforms to PDF/UA-1.
pub fn render(doc: &Doc, date: time::Date) -> Result<(Vec<u8>, bool), DocumentError> {
    let data = serde_json::to_string(doc).map_err(|e| DocumentError::Layout(e.to_string()))?;
    let mut inputs = Dict::new();
    inputs.insert("data".into(), data.as_str().into_value());
    let library = Library::builder().with_inputs(inputs).build();
    let today = Datetime::from_ymd(date.year(), date.month() as u8, date.day())
        .ok_or_else(|| DocumentError::Layout("date out of range".into()))?;
    let world = DocWorld {
        library: LazyHash::new(library),
        main: Source::new(
            FileId::new(RootedPath::new(
                VirtualRoot::Project,
                VirtualPath::new("/document.typ")
                    .map_err(|e| DocumentError::Layout(format!("{e:?}")))?,
            )),
            TEMPLATE.to_owned(),
        ),
        today,
    };
    let document: PagedDocument = typst::compile(&world)
        .output
        .map_err(|errs| DocumentError::Layout(describe(&errs)))?;
    let ua = typst_pdf::PdfOptions {
        standards: typst_pdf::PdfStandards::new(&[typst_pdf::PdfStandard::Ua_1])
            .map_err(|e| DocumentError::Pdf(e.message().to_string()))?,
        timestamp: Some(typst_pdf::Timestamp::new_utc(today)),
        ..Default::default()
    };
    match typst_pdf::pdf(&document, &ua) {
        Ok(pdf) => Ok((pdf, true)),
        Err(errs) => {
            let tagged = typst_pdf::PdfOptions {
                timestamp: Some(typst_pdf::Timestamp::new_utc(today)),
                tagged: true,
                ..Default::default()
            };
            let pdf = typst_pdf::pdf(&document, &tagged)
                .map_err(|errs| DocumentError::Pdf(describe(&errs)))?;
            // Not the writer's reason: it quotes the characters, which are a person's name.
            tracing::info!(
                refusals = errs.len(),
                "the PDF is tagged but not PDF/UA-1 (characters no font here covers)"
            );
            Ok((pdf, false))
        }
    }
}

fn describe(errs: &[typst::diag::SourceDiagnostic]) -> String {
    errs.iter()
        .map(|e| e.message.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every label the documents print for a value of the app's enums, with the UI's catalogue key
/// it must equal (checked by a test against the UI's Danish texts).
pub fn labels() -> Vec<(String, &'static str)> {
    use feltkontor_core::domain::ConsentState;
    use feltkontor_wire::*;
    let mut out = Vec::new();
    for &r in RelationToChild::ALL {
        out.push((format!("relation.{r}"), sheet::relation(r)));
    }
    for &k in AppointmentKind::ALL {
        out.push((format!("appointment.kind.{k}"), sheet::appointment_kind(k)));
    }
    for &k in NoteKind::ALL {
        out.push((format!("kind.{k}"), sheet::note_kind(k)));
    }
    for &s in ConsentSector::ALL {
        out.push((format!("sector.{s}"), sheet::sector(s)));
    }
    for s in [
        ConsentState::Valid,
        ConsentState::ExpiresSoon,
        ConsentState::Expired,
        ConsentState::NotYetValid,
        ConsentState::Withdrawn,
    ] {
        let key = serde_json::to_value(s)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push((
            format!("consent.state.{key}"),
            sheet::consent_state(Some(s)),
        ));
    }
    out.push(("consent.state.none".into(), sheet::consent_state(None)));
    out
}
