//! API keys of the network API (table `api_keys`, migration 0010): add and revoke (each one
//! transaction with its audit record), list, and the lookup by hash the daemon's key check makes.
//!
//! What must always hold: the store never sees a key, only its SHA-256 (the daemon hashes it);
//! a key change (`api_key_added`, `api_key_revoked`) commits with its audit record or not at
//! all, and the record names the key's id, name and account, never the key; a revoked key is
//! never found by [`Store::api_key_by_hash`] (and is kept, with its time of revocation).

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Row};

use super::{ms, ts, ts_opt, Store, StoreError};
use crate::audit::{AuditEntry, AuditEvent};
use crate::store::audit::append;

/// A new key's row.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub account_id: i64,
    pub name: String,
    /// The first characters of the key, shown in lists (not enough to use it).
    pub prefix: String,
    /// SHA-256 of the key.
    pub hash: [u8; 32],
    /// CIDRs, as given (already checked by the caller); empty: any address.
    pub allow_ips: Vec<String>,
}

/// One key as stored (no key material but its prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: i64,
    pub account_id: i64,
    pub account: String,
    pub name: String,
    pub prefix: String,
    pub allow_ips: Vec<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

const SELECT: &str = "SELECT k.id, k.account_id, a.name, k.name, k.prefix, k.allow_ips, \
                      k.created_at, k.revoked_at FROM api_keys k JOIN accounts a ON a.id = k.account_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    let allow: String = row.get(5)?;
    Ok(ApiKeyRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        account: row.get(2)?,
        name: row.get(3)?,
        prefix: row.get(4)?,
        // A malformed list allows nothing rather than everything.
        allow_ips: serde_json::from_str(&allow).unwrap_or_else(|_| vec!["0.0.0.0/32".into()]),
        created_at: ts(row.get(6)?),
        revoked_at: ts_opt(row.get(7)?),
    })
}

fn audit_err(e: crate::audit::AuditError) -> StoreError {
    StoreError::Contract(e.to_string())
}

impl Store {
    /// Stores a new key, audited (`api_key_added`). Returns its id.
    pub fn add_api_key(
        &mut self,
        key: &NewApiKey,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let allow = serde_json::to_string(&key.allow_ips)
            .map_err(|e| StoreError::Invalid(format!("allow_ips: {e}")))?;
        self.transaction(|tx| {
            tx.execute(
                "INSERT INTO api_keys (account_id, name, prefix, hash, allow_ips, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    key.account_id,
                    key.name,
                    key.prefix,
                    key.hash.as_slice(),
                    allow,
                    ms(now)
                ],
            )?;
            let id = tx.last_insert_rowid();
            let mut e = AuditEntry::new(AuditEvent::Other("api_key_added".into()), now, actor);
            e.account_id = Some(key.account_id);
            e.outcome = format!(
                "key {id} {:?} ({}...), allowed from {}",
                key.name,
                key.prefix,
                if key.allow_ips.is_empty() {
                    "any address".to_owned()
                } else {
                    key.allow_ips.join(" ")
                }
            );
            append(tx, e).map_err(audit_err)?;
            Ok::<_, StoreError>(id)
        })
    }

    /// Revokes key `id`, audited (`api_key_revoked`). `None`: no such key (or, with
    /// `only_account`, none of that account); `Some(false)`: it was already revoked (nothing
    /// changed, nothing audited).
    pub fn revoke_api_key(
        &mut self,
        id: i64,
        only_account: Option<i64>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Option<bool>, StoreError> {
        self.transaction(|tx| {
            let row = tx
                .query_row(&format!("{SELECT} WHERE k.id = ?1"), [id], from_row)
                .optional()?;
            // Another account's key is, for this caller, no key at all.
            let Some(row) = row.filter(|r| only_account.is_none_or(|a| a == r.account_id)) else {
                return Ok(None);
            };
            if row.revoked_at.is_some() {
                return Ok(Some(false));
            }
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1",
                params![id, ms(now)],
            )?;
            let mut e = AuditEntry::new(AuditEvent::Other("api_key_revoked".into()), now, actor);
            e.account_id = Some(row.account_id);
            e.outcome = format!("key {id} {:?} ({}...) revoked", row.name, row.prefix);
            append(tx, e).map_err(audit_err)?;
            Ok::<_, StoreError>(Some(true))
        })
    }

    /// Every key (of one account), revoked ones too, oldest first.
    pub fn api_keys(&self, account_id: Option<i64>) -> Result<Vec<ApiKeyRow>, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "{SELECT} WHERE ?1 IS NULL OR k.account_id = ?1 ORDER BY k.id"
        ))?;
        let rows = st.query_map([account_id], from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The key that is not revoked with this SHA-256.
    pub fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("{SELECT} WHERE k.hash = ?1 AND k.revoked_at IS NULL"),
                [hash.as_slice()],
                from_row,
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::NewAccount;

    #[test]
    fn add_find_revoke_with_audit() {
        let mut s = Store::open_in_memory().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let account_id = s
            .add_account(
                &NewAccount {
                    name: "shop".into(),
                    ..Default::default()
                },
                "admin:uid 0",
                now,
            )
            .unwrap();
        let key = NewApiKey {
            account_id,
            name: "erp".into(),
            prefix: "sgk_ab12".into(),
            hash: [7; 32],
            allow_ips: vec!["10.0.0.0/8".into()],
        };
        let id = s.add_api_key(&key, "admin:uid 0", now).unwrap();
        let found = s.api_key_by_hash(&[7; 32]).unwrap().unwrap();
        assert_eq!((found.id, found.account.as_str()), (id, "shop"));
        assert_eq!(found.allow_ips, vec!["10.0.0.0/8"]);
        assert!(s.api_key_by_hash(&[8; 32]).unwrap().is_none());
        // Another account's caller does not find it.
        assert_eq!(
            s.revoke_api_key(id, Some(account_id + 1), "account:other", now)
                .unwrap(),
            None
        );
        assert_eq!(
            s.revoke_api_key(id, Some(account_id), "account:shop", now)
                .unwrap(),
            Some(true)
        );
        assert_eq!(
            s.revoke_api_key(id, None, "admin:uid 0", now).unwrap(),
            Some(false)
        );
        assert_eq!(
            s.revoke_api_key(999, None, "admin:uid 0", now).unwrap(),
            None
        );
        assert!(s.api_key_by_hash(&[7; 32]).unwrap().is_none());
        let listed = s.api_keys(Some(account_id)).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].revoked_at, Some(now));
        let events: Vec<String> = crate::store::audit::all_records(&s.conn)
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {}", r.entry.event, r.entry.outcome))
            .collect();
        assert!(
            events.iter().any(|e| e.starts_with("api_key_added key 1"))
                && events
                    .iter()
                    .any(|e| e.starts_with("api_key_revoked key 1")),
            "{events:?}"
        );
    }
}
