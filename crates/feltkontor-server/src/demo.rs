//! Demo data on the central service: the same synthetic municipality as the desktop app's demo
//! (`feltkontor-demo`), generated into a throw-away local store and applied from its change log,
//! exactly as the devices' pushes will arrive. Every demo staff member gets an account.

use feltkontor_central::admin;
use feltkontor_central::db::{transaction, Conn};
use feltkontor_central::error::{Result, ServiceError};
use feltkontor_central::records;
use feltkontor_core::store::{Store, StoreLocation};
use feltkontor_core::{Clock, SystemClock};
use feltkontor_demo::{generate, DemoSize, DemoStaff};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub username: String,
    pub name: String,
    pub profession: String,
    pub team: String,
}

#[derive(Debug, Clone)]
pub struct Seeded {
    pub records: u64,
    pub accounts: Vec<DemoAccount>,
}

fn internal<E: std::fmt::Display>(e: E) -> ServiceError {
    ServiceError::internal(e.to_string())
}

/// Generates `size` with `seed` and applies it; every account gets `password`.
pub fn seed(conn: &mut dyn Conn, size: &DemoSize, seed: u64, password: &str) -> Result<Seeded> {
    let dir = tempfile::tempdir().map_err(internal)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let people = DemoStaff::new(seed);
    let mut store = Store::create(
        &StoreLocation::new(dir.path()),
        "demo-seed-throwaway-passphrase",
        people.worker().id,
        clock.clone(),
    )
    .map_err(internal)?;
    generate(&mut store, &people, size, seed, clock.now(), |_, _| {}).map_err(internal)?;
    let mut after = 0;
    let mut applied = 0;
    loop {
        let page = store.change_log(after, 2_000).map_err(internal)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        transaction(conn, None, |conn| {
            for entry in &page {
                records::apply(conn, entry)?;
            }
            Ok(())
        })?;
        applied += page.len() as u64;
    }
    let mut accounts = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for (staff, team) in &people.staff {
        let base = ascii_username(&staff.initials);
        let mut username = base.clone();
        let mut n = 1;
        while !taken.insert(username.clone()) {
            n += 1;
            username = format!("{base}{n}");
        }
        admin::create_account(
            conn,
            staff,
            &username,
            password,
            &format!("{username}@demo.aarhus.dk"),
        )?;
        accounts.push(DemoAccount {
            username,
            name: staff.name.clone(),
            profession: staff.profession.as_str().into(),
            team: people.teams[*team].name.clone(),
        });
    }
    Ok(Seeded {
        records: applied,
        accounts,
    })
}

/// A user name as a directory account has it: ASCII letters and digits only (æ → ae, ø → oe,
/// å → aa; other letters lose their accents or go).
pub fn ascii_username(initials: &str) -> String {
    let mut out = String::new();
    for c in initials.to_lowercase().chars() {
        match c {
            'æ' => out.push_str("ae"),
            'ø' => out.push_str("oe"),
            'å' => out.push_str("aa"),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'ü' | 'ú' => out.push('u'),
            'ö' | 'ó' => out.push('o'),
            'ä' | 'á' => out.push('a'),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    if out.is_empty() {
        out.push_str("medarbejder");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_user_names_are_ascii() {
        assert_eq!(super::ascii_username("SØ"), "soe");
        assert_eq!(super::ascii_username("ÆÅ"), "aeaa");
        assert_eq!(super::ascii_username("BMA"), "bma");
        assert_eq!(super::ascii_username("-"), "medarbejder");
    }
}
