//! Modems and gateways, live: the page (`GET /staff/live`) and the rows alone
//! (`GET /staff/live/rows`), which `assets/staff.js` fetches every few seconds and puts in
//! place, so the tables follow the daemon without a reload. Both render the same template
//! (`staff_live_rows.html`), so the first paint and every refresh are the same rows.
//!
//! What must always hold: reviewers and admins only; every figure is the daemon's
//! (`GET /v1/modems`, `GET /v1/gateways` with the user's session) except a gateway's parts per
//! minute, which the script derives from two successive `submits` counts; a modem's parts per
//! minute is what its SIM sent in the last minute (`quota_used.minute`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use minijinja::{context, Value};
use serde_json::Value as Json;

use super::super::daemon::AsUser;
use super::super::{Console, Ctx};
use super::{forbid, STAFF};
use crate::api::client::ClientError;

/// How often the page refreshes its rows.
pub const REFRESH_MS: u64 = 3000;

/// The rows' context: modems (with the counters and quota figures as lists for the template)
/// and gateways, from the daemon.
async fn tables(console: &Console, ctx: &Ctx) -> Result<Value, ClientError> {
    let user = AsUser::new(&console.web, &ctx.token);
    let modems: Json = user.get("/v1/modems").await?;
    let gateways: Json = user.get("/v1/gateways").await?;
    let modems: Vec<Value> = modems
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let q = |k: &str| {
                let w = &m[k];
                w.is_object().then(|| {
                    format!(
                        "{} / {} / {}",
                        w["minute"].as_u64().unwrap_or(0),
                        w["hour"].as_u64().unwrap_or(0),
                        w["day"].as_u64().unwrap_or(0)
                    )
                })
            };
            let c = &m["counters"];
            context! {
                port => m["port"].as_str().unwrap_or_default(),
                state => m["state"].as_str().unwrap_or("unknown"),
                signal => m["signal_dbm"].as_i64(),
                operator => m["operator"].as_str(),
                iccid => m["iccid"].as_str(),
                used => q("quota_used"),
                left => q("quota_left"),
                rate => m["quota_used"]["minute"].as_u64(),
                counters => format!(
                    "{} / {} / {} / {}",
                    c["sent"].as_u64().unwrap_or(0),
                    c["failed"].as_u64().unwrap_or(0),
                    c["delivered"].as_u64().unwrap_or(0),
                    c["received"].as_u64().unwrap_or(0)
                ),
                failed => c["failed"].as_u64().unwrap_or(0),
                error => m["last_error"].as_str(),
            }
        })
        .collect();
    let gateways: Vec<Value> = gateways
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|g| {
            let results = g["results"]
                .as_object()
                .map(|r| {
                    r.iter()
                        .map(|(k, v)| format!("{k}: {}", v.as_u64().unwrap_or(0)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let links = g["links"].as_array().map(Vec::len).unwrap_or(0);
            context! {
                name => g["name"].as_str().unwrap_or_default(),
                address => g["address"].as_str().unwrap_or_default(),
                src_id => g["src_id"].as_str().unwrap_or_default(),
                links_up => g["links_up"].as_u64().unwrap_or(0),
                links => links,
                window => g["window"].as_u64().unwrap_or(0),
                in_use => g["window_in_use"].as_u64().unwrap_or(0),
                submits => g["submits"].as_u64().unwrap_or(0),
                results => results,
                error => g["last_error"].as_str(),
            }
        })
        .collect();
    Ok(context! { modems => modems, gateways => gateways })
}

/// `GET /staff/live`.
pub async fn page(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    if let Some(r) = forbid(&console, &ctx, STAFF) {
        return r;
    }
    match tables(&console, &ctx).await {
        Ok(t) => console.page(
            &ctx,
            "staff_live.html",
            context! { every => REFRESH_MS, ..t },
        ),
        Err(e) => console.daemon_error(&ctx, e),
    }
}

/// `GET /staff/live/rows`: the two tables' bodies alone (for the page's script).
pub async fn rows(State(console): State<Arc<Console>>, ctx: Ctx) -> Response {
    if let Some(r) = forbid(&console, &ctx, STAFF) {
        return r;
    }
    match tables(&console, &ctx).await {
        Ok(t) => {
            let mut r = console.page(&ctx, "staff_live_rows.html", t);
            // A fragment: never cached, never a page of its own in a frame.
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => console.daemon_error(&ctx, e),
    }
}
