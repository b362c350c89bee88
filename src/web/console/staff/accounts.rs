//! Accounts and their credit lots: the list (`GET /v1/accounts`), one account's credit by lot
//! with expiry dates (`GET /v1/accounts/{name}/credit`) and its users (`GET /v1/users?account=`),
//! and adding a lot (`POST /v1/accounts/{name}/credit`, what `smsgate credit add` does).
//!
//! What must always hold: admins only; a price is read in yuan with at most two decimals and
//! sent in fen (never through a float); an expiry day is the end of that day in China's time
//! (the lot is usable through the whole day the admin typed); an empty expiry is the daemon's
//! default (a year); bad input is shown on the page and nothing is sent.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::Form;
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::Value as Json;

use super::super::daemon::{encode, AsUser};
use super::super::{china, Console, Ctx};
use super::{act, done, filled, forbid, notice, Notice, ADMIN};

/// A price in yuan ("450", "450.5", "0.07") in fen; `None` when it is not one.
pub fn price_fen(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let yuan: i64 = whole.parse().ok()?;
    let fen: i64 = format!("{frac:0<2}").parse().ok()?;
    yuan.checked_mul(100)?.checked_add(fen)
}

/// The last second of day `s` (YYYY-MM-DD) in China's time.
pub fn end_of_day(s: &str) -> Option<jiff::Timestamp> {
    let d: jiff::civil::Date = s.trim().parse().ok()?;
    d.at(23, 59, 59, 0)
        .to_zoned_datetime(china())
        .ok()
        .map(|z| z.timestamp())
}

/// `GET /staff/accounts`.
pub async fn list(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<Notice>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, ADMIN) {
        return r;
    }
    match AsUser::new(&console.web, &ctx.token)
        .get::<Json>("/v1/accounts")
        .await
    {
        Ok(v) => console.page(
            &ctx,
            "staff_accounts.html",
            context! {
                accounts => v["accounts"].clone(),
                flash => notice(&ctx, q.ok.as_deref()),
            },
        ),
        Err(e) => console.daemon_error(&ctx, e),
    }
}

/// One account's page, with an error from the credit form (and what was typed) if any.
async fn account_page(
    console: &Console,
    ctx: &Ctx,
    name: &str,
    form_error: Option<&str>,
    typed: Option<&CreditForm>,
    flash: Option<&str>,
) -> Response {
    let user = AsUser::new(&console.web, &ctx.token);
    let credit: Json = match user
        .get(&format!("/v1/accounts/{}/credit", encode(name)))
        .await
    {
        Ok(v) => v,
        Err(e) => return console.daemon_error(ctx, e),
    };
    let users: Json = match user
        .get(&format!("/v1/users?account={}", encode(name)))
        .await
    {
        Ok(v) => v,
        Err(e) => return console.daemon_error(ctx, e),
    };
    let lots: Vec<Value> = credit["lots"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|l| {
            context! {
                id => l["lot"]["id"].as_i64().unwrap_or(0),
                quantity => l["lot"]["quantity"].as_u64().unwrap_or(0),
                available => l["available"].as_u64().unwrap_or(0),
                price_fen => l["lot"]["price_fen"].as_i64(),
                purchased => l["lot"]["purchased_at"].as_str().unwrap_or_default(),
                expires => l["lot"]["expires_at"].as_str().unwrap_or_default(),
                state => l["state"].as_str().unwrap_or("active"),
            }
        })
        .collect();
    console.page(
        ctx,
        "staff_account.html",
        context! {
            name => name,
            available => credit["available"].as_u64().unwrap_or(0),
            lots => lots,
            users => users["users"].clone(),
            form_error => form_error,
            typed => typed.map(|f| context! {
                messages => f.messages.clone(), price => f.price.clone(), expires => f.expires.clone(),
            }),
            flash => flash,
        },
    )
}

/// `GET /staff/accounts/{name}`.
pub async fn one(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(name): Path<String>,
    Query(q): Query<Notice>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, ADMIN) {
        return r;
    }
    let flash = notice(&ctx, q.ok.as_deref());
    account_page(&console, &ctx, &name, None, None, flash).await
}

#[derive(Debug, Default, Deserialize)]
pub struct CreditForm {
    #[serde(default)]
    messages: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    expires: String,
}

/// `POST /staff/accounts/{name}/credit`: a new lot, then back to the account.
pub async fn add_credit(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(name): Path<String>,
    Form(form): Form<CreditForm>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, ADMIN) {
        return r;
    }
    let w = ctx.lang;
    let bad = |key: &str| w.word(key);
    let messages = match form.messages.trim().parse::<u64>() {
        Ok(n) if n > 0 => n,
        _ => {
            let e = bad("credit_bad_messages");
            return account_page(&console, &ctx, &name, Some(e), Some(&form), None).await;
        }
    };
    let Some(price_fen) = price_fen(&form.price) else {
        let e = bad("credit_bad_price");
        return account_page(&console, &ctx, &name, Some(e), Some(&form), None).await;
    };
    let expires = match filled(&form.expires) {
        None => None,
        Some(d) => match end_of_day(&d) {
            Some(t) => Some(t),
            None => {
                let e = bad("credit_bad_date");
                return account_page(&console, &ctx, &name, Some(e), Some(&form), None).await;
            }
        },
    };
    let body = serde_json::json!({
        "messages": messages,
        "price_fen": price_fen,
        "expires": expires,
    });
    let user = AsUser::new(&console.web, &ctx.token);
    let path = format!("/v1/accounts/{}/credit", encode(&name));
    match act(&user, Method::POST, &path, Some(&body)).await {
        Ok(_) => {
            tracing::info!(messages, "console: credit added");
            done(&format!("/staff/accounts/{}", encode(&name)), "ok_credit")
        }
        // The daemon's own refusal (e.g. an expiry in the past) in place, with what was typed.
        Err(crate::api::client::ClientError::Api {
            status: 400,
            message,
            ..
        }) => account_page(&console, &ctx, &name, Some(&message), Some(&form), None).await,
        Err(e) => console.daemon_error(&ctx, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_read_in_yuan_without_floats() {
        assert_eq!(price_fen("450"), Some(45000));
        assert_eq!(price_fen("450.5"), Some(45050));
        assert_eq!(price_fen("0.07"), Some(7));
        assert_eq!(price_fen(""), Some(0));
        for bad in [
            "4.505",
            "-1",
            "abc",
            ".5",
            "1e3",
            "1.2.3",
            "99999999999999999999",
        ] {
            assert_eq!(price_fen(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_expiry_day_ends_at_midnight_in_china() {
        assert_eq!(
            end_of_day("2027-01-31").unwrap().to_string(),
            "2027-01-31T15:59:59Z"
        );
        assert!(end_of_day("2027-02-30").is_none());
        assert!(end_of_day("tomorrow").is_none());
    }
}
