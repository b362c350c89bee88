//! The store: one SQLite file in WAL mode, the single source of truth. It owns the schema, its
//! migrations, and every transaction the daemon makes: no SQL lives outside this module.
//!
//! What must always hold: a state change is one transaction; a message is accepted only once its
//! row, its parts (and, with the contract layer, its credit reservation and audit entry) are
//! committed together; `synchronous = FULL` so a commit survives power loss, not just kill -9.
//! A part is claimed (`sending`, committed) before the driver writes AT+CMGS, and a `sending`
//! part found at start-up becomes `unknown`, never queued again by itself: no SMS is sent twice.
//! Times are stored as Unix milliseconds (UTC) in every table (migration 0008 converted the
//! contract tables, which held seconds before), except the audit log's `time`, which stays in
//! whole seconds because it is part of each record's hash (see that migration). Migrations run
//! forward only: an existing database
//! is copied aside (checked) before any is applied, and one with a newer schema than this
//! smsgate knows is refused before anything writes to it.

pub(crate) mod acceptance;
pub mod audit;
pub mod backup;
mod batch;
pub mod console;
pub mod contract;
mod hooks;
mod inbound;
pub mod keys;
mod messages;
mod settle;
mod sims;
pub mod state;
pub mod users;
mod views;
pub mod webhooks;

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use rusqlite_migration::{Migrations, M};

use crate::scheduler::RetryPolicy;

pub use batch::{claim_each_in, due_parts_in, NextPart, SendLog, SendOutcome};
pub use inbound::{
    Concat, InboundMessage, InboundOutcome, InboundPart, InboxQuery, INBOUND_WINDOW,
};
pub use messages::{
    insert_messages, reject, release_from_review, set_message_channel, CancelOutcome, ClaimedPart,
    FailOutcome, GatewayClaim, GatewayDue, GatewayMoOutcome, GatewayOutcome, GatewayReportIn,
    GatewayReportOutcome, InitialState, MessageChannel, MessageQuery, MessageSummary, MessageView,
    NewMessage, NewPart, PartView, ReportOutcome, Settlement, StatusReportIn,
};
pub use settle::DEFAULT_SETTLE_WINDOW;
pub use sims::{SentCounts, SimHealth, SimIdentity, SimQuota, SimRecord};
pub use state::{MessageState, PartState};
pub use views::SimTotals;

/// The row ids live in the leaf [`crate::ids`], which the scheduler shares.
pub use crate::ids::{InboundId, MessageId, PartId, SimId};

/// How many prepared statements a connection keeps: the send path alone runs a few dozen.
const STATEMENT_CACHE: usize = 256;

/// `query_row` and `execute` through the connection's statement cache: the send path runs the
/// same few dozen statements for every part, and parsing them again each time was a fifth of
/// the daemon's CPU under load (perf, `cargo bench --bench daemon -- throughput`).
pub(crate) trait CachedSql {
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;

    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl CachedSql for Connection {
    fn query_row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn execute_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

/// Errors of the store layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("message {0} not found")]
    NoSuchMessage(i64),
    #[error("part {0} not found")]
    NoSuchPart(i64),
    #[error("SIM {0} not found")]
    NoSuchSim(i64),
    #[error("part {part} cannot be claimed: {why}")]
    NotClaimable { part: i64, why: String },
    #[error("message {id}: {from} -> {to} is not an allowed transition")]
    BadMessageTransition {
        id: i64,
        from: MessageState,
        to: MessageState,
    },
    #[error("part {id}: {from} -> {to} is not an allowed transition")]
    BadPartTransition {
        id: i64,
        from: PartState,
        to: PartState,
    },
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A credit or audit hook failed (the whole state change is rolled back).
    #[error("contract: {0}")]
    Contract(String),
    /// The database's schema is newer than this smsgate's: it was written by a newer release.
    /// It is left untouched (downgrades are not supported; restore a backup of the older one).
    #[error(
        "schema version {found} was written by a newer smsgate (this one knows up to {known}): \
         not opened and not changed; run the newer smsgate, or restore a backup made by this \
         version (smsgate restore)"
    )]
    TooNew { found: i64, known: i64 },
    /// The copy made before migrating could not be written: nothing was migrated.
    #[error("backup before migrating: {0}")]
    Backup(#[from] backup::BackupError),
}

impl StoreError {
    /// The database or its disk is full (SQLITE_FULL, or a write that failed for want of
    /// space): the caller answers "try later", not "bug". Hook errors carry only text, so
    /// that is read too.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DiskFull =>
            {
                true
            }
            other => {
                let text = other.to_string();
                text.contains("database or disk is full") || text.contains("No space left")
            }
        }
    }
}

impl From<state::UnknownState> for StoreError {
    fn from(e: state::UnknownState) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Milliseconds since the Unix epoch, the stored form of a time.
pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// The inverse of [`ms`]; out-of-range values (never written by us) clamp rather than panic.
pub(crate) fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

pub(crate) fn ts_opt(ms: Option<i64>) -> Option<Timestamp> {
    ms.map(ts)
}

/// The schema, in order. Each entry is one migration file under `src/store/migrations/`;
/// new migrations are appended, never edited once released.
fn migrations() -> Migrations<'static> {
    Migrations::new(migration_list())
}

fn migration_list() -> Vec<M<'static>> {
    vec![
        M::up(include_str!("migrations/0001_core.sql")),
        M::up(include_str!("migrations/0002_contract.sql")),
        M::up(include_str!("migrations/0003_daemon.sql")),
        M::up(include_str!("migrations/0004_contract_unmetered.sql")),
        M::up_with_hook(
            include_str!("migrations/0005_number_keys.sql"),
            |tx: &rusqlite::Transaction<'_>| Ok(contract::rekey_numbers(tx)?),
        ),
        M::up(include_str!("migrations/0006_contract_edges.sql")),
        M::up(include_str!("migrations/0007_due_indexes.sql")),
        M::up(include_str!("migrations/0008_time_in_milliseconds.sql")),
        M::up_with_hook(
            include_str!("migrations/0009_gateway_channel.sql"),
            |tx: &rusqlite::Transaction<'_>| Ok(add_gateway_columns(tx)?),
        ),
        M::up(include_str!("migrations/0010_web.sql")),
        M::up(include_str!("migrations/0011_users.sql")),
        M::up_with_hook(
            include_str!("migrations/0012_console.sql"),
            |tx: &rusqlite::Transaction<'_>| Ok(console::add_console_columns(tx)?),
        ),
    ]
}

/// Migration 0009's columns and indexes (see that file), each only where missing: SQLite has
/// no `ADD COLUMN IF NOT EXISTS`, and migrations must be replayable.
fn add_gateway_columns(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let columns = [
        ("messages", "sender_kind", "TEXT NOT NULL DEFAULT 'mobile'"),
        ("messages", "gateway", "TEXT"),
        ("messages", "src_id", "TEXT"),
        ("messages", "fallback", "INTEGER NOT NULL DEFAULT 0"),
        ("parts", "gateway_msg_id", "TEXT"),
        ("inbound", "account", "TEXT"),
        ("inbound", "gateway", "TEXT"),
    ];
    for (table, column, decl) in columns {
        let exists: bool = tx.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1)"),
            [column],
            |r| r.get(0),
        )?;
        if !exists {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
        }
    }
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS messages_gateway_state ON messages(gateway, state)
             WHERE gateway IS NOT NULL;
         CREATE INDEX IF NOT EXISTS parts_gateway_msg_id ON parts(gateway_msg_id)
             WHERE gateway_msg_id IS NOT NULL;",
    )
}

/// The schema version this smsgate brings a database to (the number of migrations).
pub fn latest_schema_version() -> i64 {
    migration_list().len() as i64
}

/// A handle on the database. One per thread of the daemon; SQLite serialises writers.
pub struct Store {
    conn: Connection,
    retry_policy: RetryPolicy,
    settle_window: jiff::SignedDuration,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, switches it to WAL mode and brings
    /// the schema up to date.
    ///
    /// Upgrades run forward only. Before an existing database is migrated it is copied beside
    /// itself (`DB.pre-vN-TIME`, N the version it is brought to; checked like any backup), so
    /// a failed or unwanted upgrade can be undone with `smsgate restore`. A database whose
    /// schema is newer than this smsgate's is refused before anything writes to it (not even
    /// the journal-mode pragma).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = latest_schema_version();
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        if found > 0 && found < known {
            let dest = {
                let mut p = path.as_os_str().to_owned();
                p.push(format!(
                    ".pre-v{known}-{}",
                    backup::stamp(jiff::Timestamp::now())
                ));
                std::path::PathBuf::from(p)
            };
            backup::copy_into(&conn, &dest)?;
            backup::check(&dest)?;
            tracing::warn!(
                from = found,
                to = known,
                backup = %dest.display(),
                "migrating the database schema; the database as it was is copied aside"
            );
        }
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
        // Room for every statement of the send path (see [`CachedSql`]).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // The query planner stability guarantee: without it SQLite plans a `LIMIT ?` (and, with
        // STAT4, a range on a bound value) for the value bound at prepare time and re-prepares
        // the cached statement whenever that parameter is bound again, i.e. on every execution:
        // the due-parts read cost 310 us instead of 60 (callgrind: sqlite3Reprepare on every
        // call). Our statements name their indexes, so a plan fixed at prepare is what we want.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        migrations().to_latest(&mut conn)?;
        Ok(Store {
            conn,
            retry_policy: RetryPolicy::default(),
            settle_window: settle::DEFAULT_SETTLE_WINDOW,
        })
    }

    /// Runs `f` in one IMMEDIATE transaction and commits if it returns `Ok`; rolls back
    /// otherwise. The contract layer uses it to put its credit reservation and audit entry in
    /// the same transaction as [`insert_messages`].
    pub fn transaction<T, E>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(StoreError::from(e)))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| E::from(StoreError::from(e)))?;
        Ok(value)
    }

    /// Replaces the retry/back-off/rest policy used by [`Store::mark_failed`].
    pub fn set_retry_policy(&mut self, policy: RetryPolicy) {
        self.retry_policy = policy;
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
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest_schema_version());
    }

    /// A cached statement with a bound LIMIT runs as prepared, again and again: without the
    /// query planner stability guarantee SQLite re-prepared it at every new binding (issue 14:
    /// a fifth of the idle send path's time).
    #[test]
    fn cached_statements_are_not_prepared_again_for_a_new_limit() {
        let store = Store::open_in_memory().unwrap();
        let sql = "SELECT id FROM messages WHERE state = ?2 ORDER BY id LIMIT ?1";
        for limit in [1, 64, 2048, 7] {
            let mut st = store.conn.prepare_cached(sql).unwrap();
            let rows: Vec<i64> = st
                .query_map(rusqlite::params![limit, "queued"], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(rows.is_empty());
        }
        let st = store.conn.prepare_cached(sql).unwrap();
        assert_eq!(
            st.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "the statement was prepared again"
        );
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
        assert_eq!(store.schema_version().unwrap(), latest_schema_version());
    }

    /// The files beside `db` whose names start with `db`'s name and `infix`.
    fn siblings(db: &Path, infix: &str) -> Vec<std::path::PathBuf> {
        let name = format!("{}{infix}", db.file_name().unwrap().to_str().unwrap());
        let mut v: Vec<_> = std::fs::read_dir(db.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&name))
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn an_old_schema_with_data_migrates_intact_after_a_backup() {
        // Issue 11: a database at the schema before 0006 (which rebuilds the credit
        // reservations and review queue tables), made by the test from the old migrations.
        const OLD: usize = 5;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("smsgate.db");
        {
            let mut conn = Connection::open(&db).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            migrations().to_version(&mut conn, OLD).unwrap();
            conn.execute_batch(
                "INSERT INTO accounts (id, name, created_at) VALUES (1, 'shop', 1700000000);
                 INSERT INTO credit_lots (id, account_id, quantity, price_fen, purchased_at,
                     expires_at, reserved, used) VALUES (1, 1, 100, 4500, 1700000000,
                     1900000000, 1, 2);
                 INSERT INTO messages (id, account, recipient, text, encoding, part_count, state,
                     created_at) VALUES (1, 'shop', '+8613800138000', 'hello', 'gsm7', 1,
                     'queued', 1700000000000);
                 INSERT INTO parts (id, message_id, seq, state, pdu_hex, cmgs_length)
                     VALUES (1, 1, 1, 'queued', '0011000B', 4);
                 INSERT INTO credit_reservations (message_id, part_seq, account_id, lot_id,
                     state, reserved_at) VALUES (1, 1, 1, 1, 'reserved', 1700000000);",
            )
            .unwrap();
            let tx = conn.transaction().unwrap();
            audit::append(
                &tx,
                crate::audit::AuditEntry::new(
                    crate::audit::AuditEvent::Accepted,
                    jiff::Timestamp::from_second(1_700_000_000).unwrap(),
                    "account:shop",
                ),
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&db).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest_schema_version());
        let row: (String, String, i64, i64, i64) = store
            .conn
            .query_row(
                "SELECT m.recipient, m.text, l.quantity, l.used, r.round FROM messages m
                 JOIN credit_reservations r ON r.message_id = m.id
                 JOIN credit_lots l ON l.id = r.lot_id",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap();
        assert_eq!(row, ("+8613800138000".into(), "hello".into(), 100, 2, 1));
        assert!(matches!(
            audit::verify(&store.conn).unwrap(),
            crate::audit::VerifyReport::Intact { records: 1 }
        ));
        // The copy made before migrating: the old version, checked, beside the database.
        let pre = siblings(&db, &format!(".pre-v{}-", latest_schema_version()));
        assert_eq!(pre.len(), 1, "{pre:?}");
        let c = backup::check(&pre[0]).unwrap();
        assert_eq!(
            (c.schema_version, c.messages, c.audit_records),
            (OLD as i64, 1, 1)
        );
        drop(store);
        // Opening it again migrates nothing and copies nothing.
        Store::open(&db).unwrap();
        assert_eq!(siblings(&db, ".pre-v").len(), 1);
    }

    /// Issue 10 (one unit of time): a database at version 7 whose contract tables hold Unix
    /// seconds is brought to milliseconds by migration 0008, every time column of every
    /// contract table; the contract layer reads back the same instants; the audit chain, whose
    /// records keep whole seconds, still verifies and grows; and a value already in
    /// milliseconds is not multiplied again when the migration runs over it a second time.
    #[test]
    fn contract_times_in_seconds_become_milliseconds() {
        const OLD: usize = 7;
        const T: i64 = 1_700_000_000;
        let at = |s: i64| jiff::Timestamp::from_second(s).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("smsgate.db");
        {
            let mut conn = Connection::open(&db).unwrap();
            migrations().to_version(&mut conn, OLD).unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO accounts (id, name, created_at, blacklist_reason, blacklisted_at)
                     VALUES (1, 'shop', {T}, 'spam', {b});
                 INSERT INTO credit_lots (id, account_id, quantity, price_fen, purchased_at,
                     expires_at, reserved, used) VALUES (1, 1, 100, 4500, {T}, {e}, 1, 1);
                 INSERT INTO messages (id, account, recipient, text, encoding, part_count, state,
                     created_at) VALUES (1, 'shop', '+8613800138000', 'hello', 'gsm7', 2,
                     'queued', {T}000);
                 INSERT INTO credit_reservations (message_id, part_seq, round, account_id,
                     lot_id, state, reserved_at, settled_at) VALUES
                     (1, 1, 1, 1, 1, 'committed', {T}, {s}),
                     (1, 2, 1, 1, 1, 'reserved', {T}, NULL);
                 INSERT INTO review_queue (message_id, account_id, category, word, held_at,
                     decision, decided_at) VALUES (1, 1, 'c', 'w', {T}, NULL, NULL),
                     (2, 1, 'c', 'w', {T}, 'approve', {s});
                 INSERT INTO number_blacklist VALUES (0, '+8613900000000', 'r', 'admin', {T});
                 INSERT INTO opt_outs VALUES (1, '+8613900000001', {T}, 'inbound');
                 INSERT INTO recent_sends VALUES (1, '+8613900000001', {T});",
                b = T + 1,
                e = T + 365 * 86_400,
                s = T + 2,
            ))
            .unwrap();
            let tx = conn.transaction().unwrap();
            audit::append(
                &tx,
                crate::audit::AuditEntry::new(
                    crate::audit::AuditEvent::Accepted,
                    at(T),
                    "account:shop",
                ),
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let mut store = Store::open(&db).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest_schema_version());
        fn ms_of(conn: &Connection, sql: &str) -> Vec<Option<i64>> {
            let mut st = conn.prepare(sql).unwrap();
            let v = st
                .query_map([], |r| r.get::<_, Option<i64>>(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            v
        }
        let ms = |s: i64| Some(s * 1000);
        for (sql, want) in [
            ("SELECT created_at FROM accounts", vec![ms(T)]),
            ("SELECT blacklisted_at FROM accounts", vec![ms(T + 1)]),
            ("SELECT purchased_at FROM credit_lots", vec![ms(T)]),
            (
                "SELECT expires_at FROM credit_lots",
                vec![ms(T + 365 * 86_400)],
            ),
            (
                "SELECT reserved_at FROM credit_reservations ORDER BY part_seq",
                vec![ms(T), ms(T)],
            ),
            (
                "SELECT settled_at FROM credit_reservations ORDER BY part_seq",
                vec![ms(T + 2), None],
            ),
            (
                "SELECT held_at FROM review_queue ORDER BY message_id",
                vec![ms(T), ms(T)],
            ),
            (
                "SELECT decided_at FROM review_queue ORDER BY message_id",
                vec![None, ms(T + 2)],
            ),
            ("SELECT added_at FROM number_blacklist", vec![ms(T)]),
            ("SELECT opted_out_at FROM opt_outs", vec![ms(T)]),
            ("SELECT sent_at FROM recent_sends", vec![ms(T)]),
            // The message tables were in milliseconds already.
            ("SELECT created_at FROM messages", vec![ms(T)]),
            // The audit log keeps its hashed whole seconds.
            ("SELECT time FROM audit_log", vec![Some(T)]),
        ] {
            assert_eq!(ms_of(&store.conn, sql), want, "{sql}");
        }
        // The contract layer reads the same instants it wrote in seconds.
        let lots = contract::lots(&store.conn, 1).unwrap();
        assert_eq!(lots[0].purchased_at, at(T));
        assert_eq!(lots[0].expires_at, at(T + 365 * 86_400));
        let acc = &contract::accounts(&store.conn).unwrap()[0];
        assert_eq!(acc.blacklisted.as_ref().map(|b| b.since), Some(at(T + 1)));
        assert_eq!(
            contract::pending_reviews(&store.conn).unwrap()[0].held_at,
            at(T)
        );
        assert_eq!(contract::opt_outs(&store.conn, 1).unwrap()[0].at, at(T));
        assert_eq!(
            contract::number_blacklist(&store.conn, contract::NumberScope::Global).unwrap()[0]
                .added_at,
            at(T)
        );
        // Recent sends are found in the window they were recorded in.
        assert_eq!(
            contract::accounts_that_messaged(&store.conn, "+8613900000001", at(T - 1)).unwrap(),
            vec![1]
        );
        // The chain verifies, and a record appended after the migration chains onto it.
        store
            .transaction(|tx| {
                audit::append(
                    tx,
                    crate::audit::AuditEntry::new(
                        crate::audit::AuditEvent::Sent,
                        at(T + 10),
                        "daemon",
                    ),
                )
                .map_err(|e| StoreError::Contract(e.to_string()))
            })
            .unwrap();
        assert!(matches!(
            audit::verify(&store.conn).unwrap(),
            crate::audit::VerifyReport::Intact { records: 2 }
        ));
        // New writes are in milliseconds, to the millisecond.
        let t_ms = jiff::Timestamp::from_millisecond(T * 1000 + 1234).unwrap();
        store
            .transaction(|tx| {
                contract::record_send(tx, 1, "+8613900000002", t_ms)
                    .map_err(|e| StoreError::Contract(e.to_string()))
            })
            .unwrap();
        assert_eq!(
            ms_of(
                &store.conn,
                "SELECT sent_at FROM recent_sends WHERE recipient = '+8613900000002'"
            ),
            vec![Some(T * 1000 + 1234)]
        );
        // Replayed over milliseconds (version set back by hand), nothing is multiplied again.
        store
            .conn
            .execute_batch(include_str!("migrations/0008_time_in_milliseconds.sql"))
            .unwrap();
        assert_eq!(
            ms_of(&store.conn, "SELECT created_at FROM accounts"),
            vec![ms(T)]
        );
        assert_eq!(
            ms_of(
                &store.conn,
                "SELECT sent_at FROM recent_sends ORDER BY sent_at"
            ),
            vec![ms(T), Some(T * 1000 + 1234)]
        );
    }

    #[test]
    fn every_earlier_schema_migrates_with_a_backup() {
        for old in 1..latest_schema_version() as usize {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("smsgate.db");
            let mut conn = Connection::open(&db).unwrap();
            migrations().to_version(&mut conn, old).unwrap();
            drop(conn);
            let store = Store::open(&db).unwrap();
            assert_eq!(store.schema_version().unwrap(), latest_schema_version());
            assert_eq!(siblings(&db, ".pre-v").len(), 1, "from v{old}");
        }
        // A new database is not copied.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("smsgate.db");
        Store::open(&db).unwrap();
        assert!(siblings(&db, ".pre-v").is_empty());
    }

    #[test]
    fn a_newer_schema_is_refused_and_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("smsgate.db");
        {
            let conn = Connection::open(&db).unwrap();
            conn.execute_batch("CREATE TABLE future(x); PRAGMA user_version = 99;")
                .unwrap();
        }
        let before = std::fs::read(&db).unwrap();
        let err = Store::open(&db)
            .err()
            .expect("a newer schema must be refused");
        let msg = err.to_string();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{msg}");
        assert!(msg.contains("newer smsgate"), "{msg}");
        assert_eq!(std::fs::read(&db).unwrap(), before, "the file was changed");
        assert!(siblings(&db, ".pre-v").is_empty());
    }
}
