//! The device's connection to the central service, kept in the encrypted store: nothing about
//! it is readable while the app is locked.

use super::Store;
use crate::error::{Error, Result};
use rusqlite::OptionalExtension;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncAccount {
    pub server_url: String,
    pub username: String,
    pub refresh_token: String,
    pub connected_at: OffsetDateTime,
    pub last_sync_at: Option<OffsetDateTime>,
}

fn parse(text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| Error::Corrupt(format!("sync_account: {e}")))
}

fn format(t: OffsetDateTime) -> Result<String> {
    t.format(&Rfc3339)
        .map_err(|e| Error::Corrupt(format!("sync_account: {e}")))
}

impl Store {
    /// The connection to the central service, if this device has one.
    pub fn sync_account(&self) -> Result<Option<SyncAccount>> {
        let row = self
            .conn()
            .query_row(
                "SELECT server_url, username, refresh_token, connected_at, last_sync_at FROM sync_account",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(server_url, username, refresh_token, connected, last)| {
            Ok(SyncAccount {
                server_url,
                username,
                refresh_token,
                connected_at: parse(&connected)?,
                last_sync_at: last.as_deref().map(parse).transpose()?,
            })
        })
        .transpose()
    }

    /// Records the connection made at enrollment.
    pub fn set_sync_account(&self, account: &SyncAccount) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO sync_account (singleton, server_url, username, refresh_token, connected_at, last_sync_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![
                account.server_url,
                account.username,
                account.refresh_token,
                format(account.connected_at)?,
                account.last_sync_at.map(format).transpose()?
            ],
        )?;
        Ok(())
    }

    /// The refresh token the service just issued (the old one is used up).
    pub fn set_refresh_token(&self, token: &str) -> Result<()> {
        self.conn()
            .execute("UPDATE sync_account SET refresh_token = ?1", [token])?;
        Ok(())
    }

    /// A sync round completed at `at`.
    pub fn mark_synced(&self, at: OffsetDateTime) -> Result<()> {
        self.conn()
            .execute("UPDATE sync_account SET last_sync_at = ?1", [format(at)?])?;
        Ok(())
    }
}
