//! The store: one SQLite file in WAL mode, the single source of truth. It owns the schema, its
//! migrations, and every transaction the daemon makes: no SQL lives outside this module.
//!
//! What must always hold: a state change is one transaction; a message is accepted only once its
//! row, its parts (and, with the contract layer, its credit reservation and audit entry) are
//! committed together; `synchronous = FULL` so a commit survives power loss, not just kill -9.

use std::path::Path;

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

pub mod audit;
pub mod contract;

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
}

/// The schema, in order. Each entry is one migration file under `src/store/migrations/`;
/// new migrations are appended, never edited once released.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/0001_core.sql")),
        M::up(include_str!("migrations/0002_contract.sql")),
    ])
}

/// A handle on the database. One per thread of the daemon; SQLite serialises writers.
pub struct Store {
    pub(crate) conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, switches it to WAL mode and brings
    /// the schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    /// An in-memory database with the full schema, for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations().to_latest(&mut conn)?;
        Ok(Store { conn })
    }

    /// The schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn file_database_is_wal_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(store.schema_version().unwrap(), 2);
    }
}
