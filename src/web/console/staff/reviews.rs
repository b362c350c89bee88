//! The review queue: the messages held for review (`GET /v1/reviews`), each text with the
//! rule words the daemon found in it highlighted, and the three decisions
//! (`POST /v1/reviews/{id}`: approve, reject, reject as violation).
//!
//! What must always hold: reviewers and admins only; the highlighting comes from the daemon's
//! byte spans (`matches`), cut only at character boundaries, overlapping spans merged, a span
//! that does not fit the text ignored (never a panic); the text is escaped like any other
//! (the template marks the pieces, it never receives HTML); a decision is one of the three
//! the API knows, anything else is 400 before the daemon is asked.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Form;
use minijinja::{context, Value};
use serde::Deserialize;
use serde_json::Value as Json;

use super::super::daemon::AsUser;
use super::super::{Console, Ctx};
use super::{act, done, forbid, notice, Notice, STAFF};

/// One piece of a text: highlighted or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Piece {
    pub text: String,
    pub hit: bool,
}

/// `text` cut into plain and highlighted pieces by the byte spans `spans`.
pub fn pieces(text: &str, spans: &[(usize, usize)]) -> Vec<Piece> {
    let mut spans: Vec<(usize, usize)> = spans
        .iter()
        .copied()
        .filter(|&(s, e)| s < e && text.get(s..e).is_some())
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    for (s, e) in merged {
        if s > at {
            out.push(Piece {
                text: text[at..s].to_owned(),
                hit: false,
            });
        }
        out.push(Piece {
            text: text[s..e].to_owned(),
            hit: true,
        });
        at = e;
    }
    if at < text.len() {
        out.push(Piece {
            text: text[at..].to_owned(),
            hit: false,
        });
    }
    out
}

/// `GET /staff/reviews`.
pub async fn page(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Query(q): Query<Notice>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, STAFF) {
        return r;
    }
    let list: Json = match AsUser::new(&console.web, &ctx.token)
        .get("/v1/reviews")
        .await
    {
        Ok(v) => v,
        Err(e) => return console.daemon_error(&ctx, e),
    };
    let rows: Vec<Value> = list["reviews"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let text = r["text"].as_str().unwrap_or_default();
            let mut spans: Vec<(usize, usize)> = r["matches"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|m| {
                    Some((
                        usize::try_from(m["start"].as_u64()?).ok()?,
                        usize::try_from(m["end"].as_u64()?).ok()?,
                    ))
                })
                .collect();
            // A daemon without `matches` (or rules changed since): the word that held it.
            if spans.is_empty() {
                if let Some(w) = r["word"].as_str().filter(|w| !w.is_empty()) {
                    spans.extend(text.match_indices(w).map(|(i, m)| (i, i + m.len())));
                }
            }
            let mut words: Vec<String> = r["matches"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|m| m["word"].as_str().map(str::to_owned))
                .collect();
            if words.is_empty() {
                words.extend(r["word"].as_str().map(str::to_owned));
            }
            words.dedup();
            context! {
                id => r["id"].as_i64().unwrap_or(0),
                account => r["account"].as_str(),
                category => r["category"].as_str().unwrap_or_default(),
                words => words,
                held_at => r["held_at"].as_str().unwrap_or_default(),
                to => r["to"].as_str(),
                pieces => Value::from_serialize(pieces(text, &spans)),
            }
        })
        .collect();
    console.page(
        &ctx,
        "staff_reviews.html",
        context! { rows => rows, flash => notice(&ctx, q.ok.as_deref()) },
    )
}

#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    decision: String,
}

/// `POST /staff/reviews/{id}`: one decision, then back to the queue.
pub async fn decide(
    State(console): State<Arc<Console>>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Some(r) = forbid(&console, &ctx, STAFF) {
        return r;
    }
    let decision = form.decision.as_str();
    let (Ok(id), true) = (
        id.parse::<u64>(),
        matches!(decision, "approve" | "reject" | "reject_as_violation"),
    ) else {
        return console.error(
            ctx.lang,
            Some(&ctx),
            StatusCode::BAD_REQUEST,
            ctx.lang.word("error_title"),
        );
    };
    let body = serde_json::json!({ "decision": decision });
    let user = AsUser::new(&console.web, &ctx.token);
    match act(
        &user,
        Method::POST,
        &format!("/v1/reviews/{id}"),
        Some(&body),
    )
    .await
    {
        Ok(_) => {
            tracing::info!(message = id, decision, "console: review decided");
            done("/staff/reviews", &format!("ok_{decision}"))
        }
        Err(e) => console.daemon_error(&ctx, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(p: &[Piece]) -> String {
        p.iter()
            .map(|p| {
                if p.hit {
                    format!("[{}]", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    #[test]
    fn spans_become_pieces_at_character_boundaries() {
        let t = "低息贷款，利息优惠";
        // 贷款 = bytes 6..12, 利息 = 15..21; an overlapping span, a span past the end and one
        // inside a character are merged or ignored.
        let p = pieces(t, &[(15, 21), (6, 12), (9, 12), (40, 50), (7, 9)]);
        assert_eq!(show(&p), "低息[贷款]，[利息]优惠");
        assert_eq!(show(&pieces(t, &[])), t);
        assert_eq!(show(&pieces("abc", &[(0, 3)])), "[abc]");
        assert_eq!(show(&pieces("", &[(0, 1)])), "");
    }
}
