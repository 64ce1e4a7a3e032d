//! Danish-aware full-text search over notes and people.
//!
//! Both the index and the query are folded the same way ([`fold_da`]): lower case, and the
//! Danish letters written out as a Dane types them on a foreign keyboard (æ→ae, ø→oe, å→aa),
//! so "soeren" finds "Søren" and "aarhus" finds "Århus". Every query word is a prefix; words
//! are AND-ed; the user's text never reaches FTS5's query syntax. Snippets are cut from the
//! original text in Rust and returned as plain segments, so the UI renders them inert.
//! Ranking is BM25 over the newest [`CANDIDATES`] matches.
//!
//! A query word of four letters or more is expanded into the indexed words it begins
//! ([`EXPAND_AT_MOST`] at most) and searched as their `OR`: FTS5 answers a prefix that its
//! prefix index (two and three letters) does not cover by merging the whole posting list of
//! every word it begins before it can return the first row, 20 ms for "skole" on the bench data
//! set, while an `OR` of words is read lazily, newest first, and stops at [`CANDIDATES`]. The
//! words come from the search vocabulary, `temp.search_terms`: in memory only (nothing of it is
//! written to disk, nothing stays after the store is closed), filled from the indexes' own
//! vocabularies at the first search and then by every row indexed, its words split by a
//! one-row FTS5 table with the same tokenizer, so it holds exactly the index's words (and
//! words of rows since removed, which match nothing). The results are those of the prefix
//! query (`expanded_query_finds_what_the_prefix_query_finds`).

use super::record::{from_row, qualified_columns, FtsIndex, Record};
use super::Store;
use crate::domain::{CaseNote, Person};
use crate::error::{Result, ValidationError};
use feltkontor_wire::{AccessAction, CaseId, NoteId, PersonId};
use rusqlite::{OptionalExtension, TransactionBehavior};
use serde::Serialize;

/// A pulled page with at least this many records (a new device's first sync, a long absence)
/// stores them without indexing each; the index catches up afterwards (see `search_backlog`).
pub const DEFER_INDEXING_AT: usize = 200;

/// The tables with a search index, and their index.
fn indexed_tables() -> [(&'static str, FtsIndex); 2] {
    [
        (CaseNote::TABLE, CaseNote::FTS.expect("notes are indexed")),
        (Person::TABLE, Person::FTS.expect("people are indexed")),
    ]
}

/// From now on, rows inserted into an indexed table are not indexed one by one: the index
/// catches up later, in one pass ([`Store::index_search_backlog`]).
pub(crate) fn defer_indexing(conn: &rusqlite::Connection) -> Result<()> {
    for (table, _) in indexed_tables() {
        conn.prepare_cached(&format!(
            "INSERT OR IGNORE INTO search_backlog (tbl, indexed_upto)
             SELECT '{table}', COALESCE(MAX(rid), 0) FROM {table}"
        ))?
        .execute([])?;
    }
    Ok(())
}

/// Folds text for matching: lower case, æ→ae, ø→oe, å→aa (also ä→ae, ö→oe).
pub fn fold_da(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        for l in c.to_lowercase() {
            match l {
                'æ' | 'ä' => out.push_str("ae"),
                'ø' | 'ö' => out.push_str("oe"),
                'å' => out.push_str("aa"),
                other => out.push(other),
            }
        }
    }
    out
}

/// The Danish word for a relation, so people can be found by "mor", "far", "bedstemor"…
pub fn relation_label_da(relation: &str) -> &'static str {
    match relation {
        "mother" => "mor",
        "father" => "far",
        "step_parent" => "stedforælder bonusforælder",
        "foster_parent" => "plejeforælder",
        "sibling" => "søskende bror søster",
        "grandparent" => "bedsteforælder bedstemor bedstefar mormor morfar farmor farfar",
        "other_family" => "familie",
        "friend_neighbour" => "ven nabo",
        "teacher" => "lærer",
        "daycare_educator" => "pædagog",
        "other_professional" => "fagperson",
        _ => "",
    }
}

/// The ten digits of a query shaped as a CPR number (DDMMÅÅ-SSSS, DDMMÅÅSSSS or DDMMÅÅ SSSS),
/// valid or not: such a query is never searched as text (nor logged as its criterion).
fn cpr_shaped(q: &str) -> Option<String> {
    // Digits in any script, with any separators between them (dashes, dots, slashes, spaces
    // of any kind), and nothing else: ten of them are a CPR number, valid or not.
    let mut digits = String::new();
    for c in q.trim().chars() {
        match crate::domain::text::digit_value(c) {
            Some(d) => digits.push(char::from_digit(d, 10)?),
            None if c.is_whitespace() || matches!(c, '-' | '\u{2010}'..='\u{2015}' | '.' | '/') => {
            }
            None => return None,
        }
    }
    (digits.len() == 10).then_some(digits)
}

/// The words of a query, folded, without FTS5 syntax.
fn query_terms(q: &str) -> Vec<String> {
    fold_da(q)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(str::to_owned)
        .collect()
}

/// The FTS5 query of plain prefixes: every word of `terms` begins a word of the row (what the
/// expanded query must find: the property test compares them).
#[cfg(test)]
fn fts_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{t}\"*"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A query word with more indexed words beginning with it is searched as a prefix.
const EXPAND_AT_MOST: usize = 256;

/// The tokenizer of `notes_fts` and `persons_fts` (migration 0002).
const TOKENIZER: &str = "unicode61 remove_diacritics 2";

/// The connection's in-memory search vocabulary and the one-row table that splits text into
/// the index's words (temp tables live in memory: `temp_store = MEMORY`).
pub(crate) fn prepare_connection(conn: &rusqlite::Connection) -> Result<()> {
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_split USING fts5 (text, tokenize = '{TOKENIZER}');
         CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_split_terms USING fts5vocab (temp, search_split, row);
         CREATE TABLE IF NOT EXISTS temp.search_terms (term TEXT PRIMARY KEY) WITHOUT ROWID;
         CREATE VIRTUAL TABLE IF NOT EXISTS temp.notes_fts_terms USING fts5vocab (main, notes_fts, row);
         CREATE VIRTUAL TABLE IF NOT EXISTS temp.persons_fts_terms USING fts5vocab (main, persons_fts, row);"
    ))?;
    Ok(())
}

/// Adds the words of the index entry of row `id` of `table` to the vocabulary.
pub(crate) fn add_to_vocabulary(
    conn: &rusqlite::Connection,
    fts: &FtsIndex,
    table: &'static str,
    id: uuid::Uuid,
) -> Result<()> {
    conn.prepare_cached(super::record::sql_once(table, "vocabulary", || {
        format!(
            "INSERT INTO temp.search_split (text) SELECT concat_ws(' ', {}) FROM {}
             WHERE rowid = (SELECT rid FROM {table} WHERE id = ?1)",
            fts.columns, fts.table
        )
    }))?
    .execute([id.to_string()])?;
    split_into_vocabulary(conn)
}

fn split_into_vocabulary(conn: &rusqlite::Connection) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO temp.search_terms (term) SELECT term FROM temp.search_split_terms",
    )?
    .execute([])?;
    conn.prepare_cached("DELETE FROM temp.search_split")?
        .execute([])?;
    Ok(())
}

/// How one query word is searched.
#[derive(Debug, PartialEq)]
enum Expansion {
    /// As a prefix (`"word"*`).
    Prefix,
    /// As any of these indexed words; none: no row can match.
    Words(Vec<String>),
}

/// A piece of a snippet; `hit` pieces matched the query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SnippetPart {
    pub text: String,
    pub hit: bool,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct NoteHit {
    pub note_id: NoteId,
    pub case_id: CaseId,
    pub child_name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub occurred_at: time::OffsetDateTime,
    pub snippet: Vec<SnippetPart>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PersonHit {
    pub person_id: PersonId,
    pub case_id: CaseId,
    pub child_name: String,
    pub name: String,
    pub relation: feltkontor_wire::RelationToChild,
    pub snippet: Vec<SnippetPart>,
    /// The address, marked, when the search found the person by it.
    pub address_snippet: Option<Vec<SnippetPart>>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SearchResults {
    /// Cases by the child's name, or (a query that is a CPR number) by the child's CPR number,
    /// exactly.
    pub cases: Vec<CaseHit>,
    pub notes: Vec<NoteHit>,
    pub persons: Vec<PersonHit>,
}

/// A case found by the child's name or CPR number. The number itself is never sent back.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CaseHit {
    pub case_id: CaseId,
    pub child_name: String,
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub child_birth_date: time::Date,
    pub status: feltkontor_wire::CaseStatus,
    pub by_cpr: bool,
}

/// What the access log records for a search by CPR number: that one happened, never the number.
pub const CPR_SEARCH_CRITERION: &str = "[søgning på CPR-nummer]";

/// How many of the newest matches are ranked. A word that is in nearly every note ("mor",
/// "skole") would otherwise make every query score the whole index; the newest matches are also
/// the ones a worker is looking for. The search stays within a fixed cost at any data size.
const CANDIDATES: u32 = 1_000;

const SNIPPET_WORDS_BEFORE: usize = 6;
const SNIPPET_WORDS: usize = 24;

/// Cuts a window of words around the first word matching a term, marking matching words.
pub fn snippet(text: &str, terms: &[String]) -> Vec<SnippetPart> {
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    let is_hit = |&(s, e): &(usize, usize)| {
        let w = fold_da(&text[s..e]);
        terms.iter().any(|t| w.starts_with(t.as_str()))
    };
    let first = words.iter().position(is_hit).unwrap_or(0);
    let from = first.saturating_sub(SNIPPET_WORDS_BEFORE);
    let to = (from + SNIPPET_WORDS).min(words.len());
    if from >= to {
        return Vec::new();
    }
    let mut parts: Vec<SnippetPart> = Vec::new();
    let mut push = |text: &str, hit: bool| match parts.last_mut() {
        Some(last) if last.hit == hit => last.text.push_str(text),
        _ => parts.push(SnippetPart {
            text: text.to_owned(),
            hit,
        }),
    };
    if from > 0 {
        push("… ", false);
    }
    let mut pos = words[from].0;
    for w in &words[from..to] {
        push(&text[pos..w.0], false);
        push(&text[w.0..w.1], is_hit(w));
        pos = w.1;
    }
    if to < words.len() {
        push(" …", false);
    }
    parts
}

impl Store {
    /// How many notes and people are not in the search index yet.
    pub fn search_backlog(&self) -> Result<u64> {
        let mut total = 0u64;
        for (table, _) in indexed_tables() {
            let n: i64 = self.conn().query_row(
                &format!(
                    "SELECT COUNT(*) FROM {table}
                     WHERE rid > (SELECT indexed_upto FROM search_backlog WHERE tbl = '{table}')"
                ),
                [],
                |r| r.get(0),
            )?;
            total += n as u64;
        }
        Ok(total)
    }

    /// Indexes up to `max_rows` rows of the search backlog, in one short transaction; true
    /// when the index is complete. Called in steps after a large pull, and before a search.
    pub fn index_search_backlog(&self, max_rows: u32) -> Result<bool> {
        let conn = self.conn();
        let behind: Option<(String, i64)> = conn
            .query_row(
                "SELECT tbl, indexed_upto FROM search_backlog ORDER BY tbl LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((tbl, upto)) = behind else {
            return Ok(true);
        };
        let Some((table, fts)) = indexed_tables().into_iter().find(|(t, _)| *t == tbl) else {
            return Err(crate::Error::Corrupt(format!("search backlog of {tbl}")));
        };
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        // The last row of this step; none when the rest fits.
        let end: Option<i64> = tx
            .query_row(
                &format!("SELECT rid FROM {table} WHERE rid > ?1 ORDER BY rid LIMIT 1 OFFSET ?2"),
                rusqlite::params![upto, max_rows.max(1) - 1],
                |r| r.get(0),
            )
            .optional()?;
        tx.execute(
            &format!(
                "INSERT INTO {fts_table} (rowid, {cols}) SELECT rid, {exprs} FROM {table}
                 WHERE rid > ?1 AND rid <= ?2 AND archived = 0",
                fts_table = fts.table,
                cols = fts.columns,
                exprs = fts.exprs,
            ),
            rusqlite::params![upto, end.unwrap_or(i64::MAX)],
        )?;
        match end {
            Some(end) => tx.execute(
                "UPDATE search_backlog SET indexed_upto = ?2 WHERE tbl = ?1",
                rusqlite::params![tbl, end],
            )?,
            None => tx.execute("DELETE FROM search_backlog WHERE tbl = ?1", [&tbl])?,
        };
        tx.commit()?;
        // Many rows at once: the vocabulary is read again from the indexes at the next search.
        self.vocabulary_ready.set(false);
        Ok(end.is_none()
            && conn
                .query_row("SELECT 1 FROM search_backlog LIMIT 1", [], |_| Ok(()))
                .optional()?
                .is_none())
    }

    /// Searches notes (body, child's words, family's perspective) and people (name, relation)
    /// that the worker may see, best matches first. Logged with its criterion.
    pub fn search(&self, query: &str, limit: u32) -> Result<SearchResults> {
        // A CPR number is looked up exactly, among cases only; the access log records that a
        // CPR search happened, without the number.
        if let Some(digits) = cpr_shaped(query) {
            let cpr = crate::domain::Cpr::parse(&digits)?;
            let mut entry = self.access_entry(AccessAction::Search);
            entry.criterion = Some(CPR_SEARCH_CRITERION.to_owned());
            super::access::insert(self.conn(), &entry)?;
            let cases = self.records::<crate::domain::Case>(
                "child_cpr = ?1 ORDER BY child_name",
                [cpr.expose()],
            )?;
            return Ok(SearchResults {
                cases: cases
                    .into_iter()
                    .map(|c| CaseHit {
                        case_id: c.id,
                        child_name: c.child_name,
                        child_birth_date: c.child_birth_date,
                        status: c.status,
                        by_cpr: true,
                    })
                    .collect(),
                ..SearchResults::default()
            });
        }
        let terms = query_terms(query);
        if terms.is_empty() {
            return Err(ValidationError::EmptySearch.into());
        }
        // Nothing stored is missing from the results: an index still catching up after a
        // large pull is completed first (normally the sync has done it already).
        while !self.index_search_backlog(2_000)? {}
        let mut entry = self.access_entry(AccessAction::Search);
        // A query with a number that may be a CPR number is logged with its digits masked.
        entry.criterion = Some(
            crate::domain::text::mask_cpr_like(query.trim())
                .chars()
                .take(200)
                .collect(),
        );
        super::access::insert(self.conn(), &entry)?;

        let fts = expanded_query(self.conn(), &self.vocabulary_ready, &terms)?;
        let worker = self.worker_id().to_string();
        let mut results = SearchResults::default();

        // Cases by the child's name: every query word is the start of a word of the name.
        // The database hands over only names holding every word somewhere (a case is decoded
        // only then; decoding every case was most of a search's time).
        let filter = (1..=terms.len())
            .map(|i| format!("instr(fold_da(child_name), ?{i}) > 0"))
            .collect::<Vec<_>>()
            .join(" AND ");
        for c in self.records::<crate::domain::Case>(
            &format!("{filter} ORDER BY child_name"),
            rusqlite::params_from_iter(terms.iter()),
        )? {
            let name = fold_da(&c.child_name);
            let words: Vec<&str> = name.split(|ch: char| !ch.is_alphanumeric()).collect();
            if terms
                .iter()
                .all(|t| words.iter().any(|w| w.starts_with(t.as_str())))
            {
                results.cases.push(CaseHit {
                    case_id: c.id,
                    child_name: c.child_name,
                    child_birth_date: c.child_birth_date,
                    status: c.status,
                    by_cpr: false,
                });
                if results.cases.len() as u32 >= limit {
                    break;
                }
            }
        }

        // A word that begins no indexed word: no note or person can match.
        if let Some(fts) = fts {
            self.search_index(&fts, &terms, &worker, limit, &mut results)?;
        }
        Ok(results)
    }

    /// Notes and people matching FTS5 query `fts`, into `results`.
    fn search_index(
        &self,
        fts: &str,
        terms: &[String],
        worker: &str,
        limit: u32,
        results: &mut SearchResults,
    ) -> Result<()> {
        let note_sql = format!(
            "WITH recent AS (SELECT rowid, rank FROM notes_fts WHERE notes_fts MATCH ?1 ORDER BY rowid DESC LIMIT {CANDIDATES}),
                  hits AS (SELECT rowid, rank FROM recent ORDER BY rank LIMIT ?3)
             SELECT {}, c.child_name FROM hits JOIN notes ON notes.rid = hits.rowid
             JOIN cases c ON c.id = notes.case_id
             WHERE notes.archived = 0 AND {}
             ORDER BY hits.rank",
            qualified_columns::<CaseNote>(),
            super::queries::NOTE_VISIBLE
        );
        let mut stmt = self.conn().prepare_cached(&note_sql)?;
        let rows = stmt.query_map(rusqlite::params![fts, worker, limit * 4], |r| {
            Ok((
                from_row::<CaseNote>(r)?,
                r.get::<_, String>(CaseNote::COLUMNS.len())?,
            ))
        })?;
        for row in rows {
            let (note, child_name) = row?;
            let text = [
                note.body.as_str(),
                note.child_words.as_str(),
                note.family_perspective.as_str(),
            ]
            .into_iter()
            .find(|t| {
                let f = fold_da(t);
                terms.iter().any(|term| f.contains(term.as_str()))
            })
            .unwrap_or(note.body.as_str());
            results.notes.push(NoteHit {
                note_id: note.id,
                case_id: note.case_id,
                child_name,
                occurred_at: note.occurred_at,
                snippet: snippet(text, terms),
            });
            if results.notes.len() as u32 >= limit {
                break;
            }
        }

        let person_sql = format!(
            "WITH recent AS (SELECT rowid, rank FROM persons_fts WHERE persons_fts MATCH ?1 ORDER BY rowid DESC LIMIT {CANDIDATES}),
                  hits AS (SELECT rowid, rank FROM recent ORDER BY rank LIMIT ?2)
             SELECT {}, c.child_name FROM hits JOIN persons ON persons.rid = hits.rowid
             JOIN cases c ON c.id = persons.case_id
             WHERE persons.archived = 0
             ORDER BY hits.rank",
            qualified_columns::<Person>()
        );
        let mut stmt = self.conn().prepare_cached(&person_sql)?;
        let rows = stmt.query_map(rusqlite::params![fts, limit], |r| {
            Ok((
                from_row::<Person>(r)?,
                r.get::<_, String>(Person::COLUMNS.len())?,
            ))
        })?;
        for row in rows {
            let (p, child_name) = row?;
            // Found by the address: it is shown (never a protected one, which is not indexed).
            let address = p
                .address
                .as_ref()
                .filter(|_| !p.protected_address)
                .map(|a| a.as_str().to_owned())
                .filter(|a| {
                    let f = fold_da(a);
                    terms.iter().any(|t| f.contains(t.as_str()))
                });
            results.persons.push(PersonHit {
                address_snippet: address.as_deref().map(|a| snippet(a, terms)),
                snippet: snippet(&p.name, terms),
                person_id: p.id,
                case_id: p.case_id,
                child_name,
                name: p.name,
                relation: p.relation,
            });
        }
        Ok(())
    }
}

/// The FTS5 query for `terms` (see the module's notes on expansion); `None` when a word begins
/// no indexed word. `ready`: the vocabulary holds every indexed word (read from the indexes
/// when not).
fn expanded_query(
    conn: &rusqlite::Connection,
    ready: &std::cell::Cell<bool>,
    terms: &[String],
) -> Result<Option<String>> {
    if !ready.get() {
        conn.execute_batch(
            "DELETE FROM temp.search_terms;
             INSERT OR IGNORE INTO temp.search_terms (term) SELECT term FROM temp.notes_fts_terms;
             INSERT OR IGNORE INTO temp.search_terms (term) SELECT term FROM temp.persons_fts_terms;",
        )?;
        ready.set(true);
    }
    let mut parts = Vec::with_capacity(terms.len());
    for t in terms {
        match expansion(conn, t)? {
            Expansion::Prefix => parts.push(format!("\"{t}\"*")),
            Expansion::Words(words) if words.is_empty() => return Ok(None),
            Expansion::Words(words) => parts.push(format!(
                "({})",
                words
                    .iter()
                    .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            )),
        }
    }
    Ok(Some(parts.join(" AND ")))
}

/// How query word `t` is searched: as the indexed words it begins, when it is one word to the
/// index's tokenizer, longer than the prefix index covers, and begins few enough words.
fn expansion(conn: &rusqlite::Connection, t: &str) -> Result<Expansion> {
    if t.chars().count() <= 3 {
        return Ok(Expansion::Prefix);
    }
    // The word as the index has it (the tokenizer also takes off accents: "café" → "cafe").
    conn.prepare_cached("INSERT INTO temp.search_split (text) VALUES (?1)")?
        .execute([t])?;
    let split: Vec<String> = conn
        .prepare_cached("SELECT term FROM temp.search_split_terms LIMIT 2")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    conn.prepare_cached("DELETE FROM temp.search_split")?
        .execute([])?;
    let [word] = &split[..] else {
        return Ok(Expansion::Prefix);
    };
    let words: Vec<String> = conn
        .prepare_cached(
            "SELECT term FROM temp.search_terms WHERE term >= ?1 AND term < ?1 || char(1114111)
             ORDER BY term LIMIT ?2",
        )?
        .query_map(rusqlite::params![word, EXPAND_AT_MOST as i64 + 1], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    if words.len() > EXPAND_AT_MOST {
        return Ok(Expansion::Prefix);
    }
    Ok(Expansion::Words(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_makes_danish_letters_typeable() {
        assert_eq!(fold_da("Søren"), "soeren");
        assert_eq!(fold_da("ÅRHUS"), "aarhus");
        assert_eq!(fold_da("Ærø"), "aeroe");
    }

    #[test]
    fn query_syntax_is_neutralised() {
        let terms = query_terms("søren\" OR body:* NEAR(");
        assert_eq!(terms, vec!["soeren", "or", "body", "near"]);
        assert_eq!(fts_query(&terms[..1]), "\"soeren\"*");
    }

    #[test]
    fn snippet_marks_hits_and_cuts_a_window() {
        let text = "Vi talte med Søren om skolen. Han siger at han savner sin far meget.";
        let parts = snippet(text, &["soeren".into()]);
        let hits: Vec<_> = parts
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(hits, vec!["Søren"]);
        let joined: String = parts.iter().map(|p| p.text.as_str()).collect();
        assert!(joined.starts_with("Vi talte med Søren"));
    }

    /// The words the property test writes notes and people with: frequent words and their
    /// forms, accents the tokenizer takes off, Danish letters, digits, marks, joined words.
    const WORDS: &[&str] = &[
        "skole",
        "skolen",
        "skoler",
        "skolestart",
        "skoleskift",
        "skol",
        "sko",
        "mor",
        "moren",
        "morgen",
        "mormor",
        "café",
        "cafe",
        "cafeteria",
        "Zoë",
        "naïve",
        "Søren",
        "Sørensen",
        "søvn",
        "søvnproblemer",
        "ærlig",
        "Ærenlund",
        "åben",
        "Århus",
        "aarhus",
        "2026",
        "ab12",
        "mor-far",
        "o'neil",
        "e\u{301}tude",
        "étude",
        "ﬁnale",
        "straße",
        "ıstanbul",
        "bekymring",
        "bekymret",
        "netværksmøde",
        "hjemmebesøg",
        "tolk",
        "tolkning",
        "fodbold",
    ];

    fn index(texts: &[(i64, String, String)]) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "CREATE VIRTUAL TABLE notes_fts USING fts5 (body, child_words, family_perspective,
                 tokenize = '{TOKENIZER}', prefix = '2 3');
             CREATE VIRTUAL TABLE persons_fts USING fts5 (name, relation, address,
                 tokenize = '{TOKENIZER}', prefix = '2 3');"
        ))
        .unwrap();
        prepare_connection(&conn).unwrap();
        for (rowid, a, b) in texts {
            conn.execute(
                "INSERT INTO notes_fts (rowid, body, child_words, family_perspective) VALUES (?1, ?2, ?3, '')",
                rusqlite::params![rowid, fold_da(a), fold_da(b)],
            )
            .unwrap();
        }
        conn
    }

    fn matching(conn: &rusqlite::Connection, fts: Option<&str>) -> Vec<i64> {
        let Some(fts) = fts else { return Vec::new() };
        conn.prepare("SELECT rowid FROM notes_fts WHERE notes_fts MATCH ?1 ORDER BY rowid")
            .unwrap()
            .query_map([fts], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// The expanded query finds exactly the rows the prefix query finds, for prefixes of
        /// every length of words of every kind, alone and together; and so do rows indexed
        /// after the vocabulary was read (each one's words added as it is indexed).
        #[test]
        fn expanded_query_finds_what_the_prefix_query_finds(
            docs in proptest::collection::vec(
                (proptest::collection::vec(0..WORDS.len(), 1..6), proptest::collection::vec(0..WORDS.len(), 0..3)),
                1..30,
            ),
            later in proptest::collection::vec(proptest::collection::vec(0..WORDS.len(), 1..6), 0..5),
            queries in proptest::collection::vec((proptest::collection::vec(0..WORDS.len(), 1..3), 1..12usize), 1..8),
        ) {
            let text = |ws: &[usize]| ws.iter().map(|i| WORDS[*i]).collect::<Vec<_>>().join(" ");
            let texts: Vec<(i64, String, String)> = docs
                .iter()
                .enumerate()
                .map(|(i, (a, b))| (i as i64 + 1, text(a), text(b)))
                .collect();
            let conn = index(&texts);
            let ready = std::cell::Cell::new(false);
            // The vocabulary is read at the first query; later rows add their own words.
            expanded_query(&conn, &ready, &["skole".to_owned()]).unwrap();
            for (i, ws) in later.iter().enumerate() {
                let rowid = 1_000 + i as i64;
                conn.execute(
                    "INSERT INTO notes_fts (rowid, body, child_words, family_perspective) VALUES (?1, ?2, '', '')",
                    rusqlite::params![rowid, fold_da(&text(ws))],
                )
                .unwrap();
                conn.execute(
                    &format!("INSERT INTO temp.search_split (text) SELECT concat_ws(' ', body, child_words, family_perspective) FROM notes_fts WHERE rowid = {rowid}"),
                    [],
                )
                .unwrap();
                split_into_vocabulary(&conn).unwrap();
            }
            for (ws, cut) in &queries {
                // Each query word a prefix of a word (cut after `cut` characters).
                let query: Vec<String> = ws
                    .iter()
                    .map(|i| WORDS[*i].chars().take(*cut).collect::<String>())
                    .collect();
                let terms = query_terms(&query.join(" "));
                if terms.is_empty() {
                    continue;
                }
                let expanded = expanded_query(&conn, &ready, &terms).unwrap();
                proptest::prop_assert_eq!(
                    matching(&conn, expanded.as_deref()),
                    matching(&conn, Some(&fts_query(&terms))),
                    "query {:?} as {:?}", terms, expanded
                );
            }
        }
    }

    #[test]
    fn a_frequent_word_is_expanded_and_a_short_one_is_not() {
        let conn = index(&[(1, "skolen skoler skolestart".into(), "".into())]);
        let ready = std::cell::Cell::new(false);
        assert_eq!(
            expanded_query(&conn, &ready, &["skole".into(), "sk".into()]).unwrap(),
            Some("(\"skolen\" OR \"skoler\" OR \"skolestart\") AND \"sk\"*".into())
        );
        assert_eq!(
            expanded_query(&conn, &ready, &["café".into()]).unwrap(),
            None,
            "the tokenizer's own form (cafe) is looked up, and begins no word here"
        );
    }
}
