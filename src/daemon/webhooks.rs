//! Webhooks, the daemon's side: an account's URL and a fresh signing secret (set by admins),
//! and the outbox a front end works through (due events, acknowledgements). The daemon never
//! makes a network connection for them: `smsgate web` POSTs (see `web::push`).
//!
//! What must always hold: a URL is `http://` or `https://` with a host; the secret is shown in
//! the answer of the set and to front ends, never logged or audited; an acknowledgement of an
//! unknown or settled event changes nothing (404).

use jiff::Timestamp;
use serde_json::json;

use crate::api::admin::{DueEvent, DueEvents};
use crate::api::ApiError;
use crate::store::{Store, StoreError};

type HookResult = Result<Result<serde_json::Value, ApiError>, StoreError>;

fn new_secret() -> Result<String, ApiError> {
    use rand::TryRngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no random source for a secret: {e}")))?;
    Ok(format!("whsec_{}", hex::encode(bytes)))
}

/// Whether `url` is one the front end can POST to.
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: axum::http::Uri = url.parse().map_err(|_| format!("{url:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{url:?}: only http:// and https:// URLs")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{url:?}: no host"));
    }
    Ok(())
}

pub(super) fn set(
    s: &mut Store,
    account_id: i64,
    account: &str,
    url: Option<String>,
    actor: &str,
    now: Timestamp,
) -> HookResult {
    let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
        s.set_webhook(account_id, None, actor, now)?;
        return Ok(Ok(json!({"account": account, "url": null})));
    };
    if let Err(e) = check_url(url.trim()) {
        return Ok(Err(ApiError::InvalidField(format!("url: {e}"))));
    }
    let secret = match new_secret() {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    s.set_webhook(account_id, Some((url.trim(), &secret)), actor, now)?;
    tracing::info!(account, "webhook set");
    Ok(Ok(
        json!({"account": account, "url": url.trim(), "secret": secret}),
    ))
}

pub(super) fn list(s: &Store) -> HookResult {
    let hooks = s.webhooks()?;
    Ok(Ok(json!({"webhooks": hooks
        .iter()
        .map(|w| json!({
            "account": w.account,
            "url": w.url,
            "secret_prefix": w.secret.chars().take(14).collect::<String>(),
        }))
        .collect::<Vec<_>>()})))
}

pub(super) fn due(s: &Store, limit: u32, now: Timestamp) -> HookResult {
    let events = s
        .due_webhook_events(now, limit)?
        .into_iter()
        .map(|e| DueEvent {
            id: e.id,
            account: e.account,
            url: e.url,
            secret: e.secret,
            body: e.body,
            attempts: e.attempts,
        })
        .collect();
    Ok(Ok(serde_json::to_value(DueEvents { events })
        .map_err(|e| StoreError::Invalid(e.to_string()))?))
}

pub(super) fn ack(s: &mut Store, id: i64, error: Option<String>, now: Timestamp) -> HookResult {
    // The error is the customer's server's words: bounded before it is stored.
    let error: Option<String> = error.map(|e| e.chars().take(300).collect());
    Ok(match s.ack_webhook_event(id, error.as_deref(), now)? {
        None => Err(ApiError::NotFound(format!(
            "no webhook event {id} waiting for delivery"
        ))),
        Some(outcome) => {
            if outcome == "given_up" {
                tracing::warn!(id, "webhook event given up after 24 h of failed attempts");
            }
            Ok(json!({"id": id, "outcome": outcome}))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://example.com/hook").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x?y=1").is_ok());
        assert!(check_url("ftp://example.com/").is_err());
        assert!(check_url("/relative").is_err());
        assert!(check_url("not a url").is_err());
    }
}
