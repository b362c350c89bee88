//! API keys of the network API, the daemon's side: making a key (shown once), listing,
//! revoking, and the check a front end asks for on every request (key + client address ->
//! account). The rows are `store::keys`.
//!
//! The hash is SHA-256 of the key's text. A key is `sgk_` and 64 hex digits: 32 bytes from the
//! operating system's random source, so it cannot be guessed and a slow password hash (argon2id)
//! would add nothing but a cost to every request; a fast hash keeps the check one indexed lookup.
//! A leaked database gives no usable key.
//!
//! What must always hold: the key itself is returned once, by [`add`], and is never stored,
//! logged or audited; a revoked or unknown key is 401 and a key used from outside its
//! allow-list is 403, whatever the address looks like (an IPv4 client seen as `::ffff:a.b.c.d`
//! on a dual-stack listener is matched as the IPv4 address).

use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::api::admin::VerifiedKey;
use crate::api::ApiError;
use crate::store::keys::{ApiKeyRow, NewApiKey};
use crate::store::{Store, StoreError};

/// What an operation answers (see `admin::AdminResult`).
type KeyResult = Result<Result<serde_json::Value, ApiError>, StoreError>;

/// The text every key starts with (recognisable in a leaked file or a secret scanner).
pub const KEY_PREFIX: &str = "sgk_";

/// SHA-256 of a presented key.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A fresh key: [`KEY_PREFIX`] and 32 random bytes in hex.
fn new_key() -> Result<String, ApiError> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no random source for a key: {e}")))?;
    Ok(format!("{KEY_PREFIX}{}", hex::encode(bytes)))
}

/// One allow-list entry: a CIDR or a single address, in canonical form.
pub fn parse_allowed(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{entry:?} is not an address or a CIDR such as 203.0.113.0/24"))
}

/// Whether `ip` is allowed by `allow` (empty: any address).
pub fn ip_allowed(allow: &[String], ip: IpAddr) -> bool {
    if allow.is_empty() {
        return true;
    }
    let ip = ip.to_canonical();
    allow
        .iter()
        .filter_map(|a| parse_allowed(a).ok())
        .any(|net| net.contains(&ip))
}

fn key_json(k: &ApiKeyRow) -> serde_json::Value {
    json!({
        "id": k.id,
        "account": k.account,
        "name": k.name,
        "prefix": k.prefix,
        "allow_ips": k.allow_ips,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    })
}

/// Makes a key for the account (audited); the answer holds the key, the only time it is shown.
pub(super) fn add(
    s: &mut Store,
    account_id: i64,
    account: &str,
    name: String,
    allow_ips: Vec<String>,
    actor: &str,
    now: Timestamp,
) -> KeyResult {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Ok(Err(ApiError::InvalidField(
            "name: 1 to 100 characters, to tell the account's keys apart".into(),
        )));
    }
    let mut allow = Vec::with_capacity(allow_ips.len());
    for entry in &allow_ips {
        match parse_allowed(entry) {
            Ok(net) => allow.push(net.to_string()),
            Err(e) => return Ok(Err(ApiError::InvalidField(format!("allow_ips: {e}")))),
        }
    }
    let key = match new_key() {
        Ok(k) => k,
        Err(e) => return Ok(Err(e)),
    };
    let prefix: String = key.chars().take(KEY_PREFIX.len() + 8).collect();
    let row = NewApiKey {
        account_id,
        name: name.clone(),
        prefix: prefix.clone(),
        hash: key_hash(&key),
        allow_ips: allow.clone(),
    };
    let id = s.add_api_key(&row, actor, now)?;
    tracing::info!(id, account, "api key added (prefix {prefix})");
    Ok(Ok(json!({
        "id": id,
        "account": account,
        "name": name,
        "prefix": prefix,
        "allow_ips": allow,
        "key": key,
    })))
}

/// Every key (of one account), without the keys.
pub(super) fn list(s: &Store, account_id: Option<i64>) -> KeyResult {
    let keys = s.api_keys(account_id)?;
    Ok(Ok(
        json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

/// Revokes a key (audited); 404 for an unknown id (or, with `only`, a key of another
/// account), 409 for a key already revoked.
pub(super) fn revoke(
    s: &mut Store,
    id: i64,
    only: Option<i64>,
    actor: &str,
    now: Timestamp,
) -> KeyResult {
    Ok(match s.revoke_api_key(id, only, actor, now)? {
        None => Err(ApiError::NotFound(format!("no API key {id}"))),
        Some(false) => Err(ApiError::Conflict(format!(
            "API key {id} is already revoked"
        ))),
        Some(true) => {
            tracing::info!(id, "api key revoked");
            Ok(json!({"id": id, "revoked": true}))
        }
    })
}

/// The account of a key presented from `ip`.
pub(super) fn verify(s: &Store, key: &str, ip: &str) -> KeyResult {
    let Ok(ip) = ip.trim().parse::<IpAddr>() else {
        return Ok(Err(ApiError::InvalidField(format!(
            "ip: {ip:?} is not an IP address"
        ))));
    };
    let Some(row) = s.api_key_by_hash(&key_hash(key))? else {
        return Ok(Err(ApiError::Unauthorized(
            "unknown or revoked API key".into(),
        )));
    };
    if !ip_allowed(&row.allow_ips, ip) {
        tracing::info!(
            id = row.id,
            account = row.account,
            "api key used from {ip}, outside its allow-list"
        );
        return Ok(Err(ApiError::Forbidden(format!(
            "this API key may not be used from {}",
            ip.to_canonical()
        ))));
    }
    let v = VerifiedKey {
        account: row.account,
        key_id: row.id,
    };
    Ok(Ok(
        serde_json::to_value(v).map_err(|e| StoreError::Invalid(e.to_string()))?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists() {
        let allow = vec!["10.0.0.0/8".to_owned(), "2001:db8::1".to_owned()];
        assert!(ip_allowed(&allow, "10.1.2.3".parse().unwrap()));
        assert!(ip_allowed(&allow, "::ffff:10.1.2.3".parse().unwrap()));
        assert!(!ip_allowed(&allow, "11.0.0.1".parse().unwrap()));
        assert!(ip_allowed(&allow, "2001:db8::1".parse().unwrap()));
        assert!(!ip_allowed(&allow, "2001:db8::2".parse().unwrap()));
        assert!(ip_allowed(&[], "198.51.100.7".parse().unwrap()));
        assert_eq!(
            parse_allowed("192.168.1.77/24").unwrap().to_string(),
            "192.168.1.0/24"
        );
        assert_eq!(parse_allowed("::1").unwrap().to_string(), "::1/128");
        assert!(parse_allowed("10.0.0.0/33").is_err());
        assert!(parse_allowed("example.com").is_err());
    }

    #[test]
    fn keys_are_random_and_checked_by_hash() {
        let mut s = Store::open_in_memory().unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let account = crate::store::contract::NewAccount {
            name: "shop".into(),
            ..Default::default()
        };
        let account_id = s.add_account(&account, "admin:uid 0", now).unwrap();
        let made = add(
            &mut s,
            account_id,
            "shop",
            "erp".into(),
            vec!["127.0.0.1".into()],
            "admin:uid 0",
            now,
        )
        .unwrap()
        .unwrap();
        let key = made["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with(KEY_PREFIX) && key.len() == KEY_PREFIX.len() + 64);
        let ok = verify(&s, &key, "127.0.0.1").unwrap().unwrap();
        assert_eq!(ok["account"], "shop");
        let far = verify(&s, &key, "192.0.2.1").unwrap().unwrap_err();
        assert_eq!(far.status(), 403);
        let wrong = verify(&s, "sgk_00", "127.0.0.1").unwrap().unwrap_err();
        assert_eq!(wrong.status(), 401);
        let id = made["id"].as_i64().unwrap();
        revoke(&mut s, id, None, "admin:uid 0", now)
            .unwrap()
            .unwrap();
        let revoked = verify(&s, &key, "127.0.0.1").unwrap().unwrap_err();
        assert_eq!(revoked.status(), 401);
        let listed = list(&s, None).unwrap().unwrap().to_string();
        assert!(!listed.contains(&key), "{listed}");
        let bad = add(
            &mut s,
            account_id,
            "shop",
            "x".into(),
            vec!["nope".into()],
            "a",
            now,
        )
        .unwrap()
        .unwrap_err();
        assert_eq!(bad.status(), 400);
    }
}
