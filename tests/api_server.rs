//! The API server end to end: the real server on a real Unix socket in a tempdir, requests made
//! with the hyper client, against the in-memory test double of tests/api_support. Covers every
//! route, the caller the backend sees, and every error status with its JSON body.

mod api_support;

use std::sync::Arc;

use api_support::{MemBackend, TestServer};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use smsgate::api::types::*;

/// A raw request: status and body parsed as JSON (or as a string when it is not JSON).
async fn call(server: &TestServer, method: Method, uri: &str, body: &[u8]) -> (StatusCode, Value) {
    let (status, bytes) = server
        .client()
        .raw(method, uri, body.to_vec())
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// Asserts an error answer: the status and `{"error": {"code", "message"}}` with that code.
fn assert_error(got: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    let message = got.1["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "no message in {}", got.1);
}

fn send_body(to: &[&str], text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"to": to, "text": text})).unwrap()
}

#[tokio::test]
async fn send_accepts_and_reports_refusals_per_recipient() {
    let server = TestServer::start(MemBackend::new());
    let body = serde_json::to_vec(&json!({
        "to": ["13912345678", "000", "13800000001", "+8613700000000"],
        "text": "您的验证码是 123456【商城】",
        "report": true,
        "validity": "6h",
        "not_before": "2026-05-01T01:00:00Z",
        "priority": "high"
    }))
    .unwrap();
    let (status, v) = call(&server, Method::POST, "/v1/messages", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["ids"], json!([1, 2]));
    assert_eq!(v["parts"], 1);
    let refused: Vec<(String, String)> = v["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["to"].as_str().unwrap().into(),
                r["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        vec![
            ("000".to_string(), "invalid_number".to_string()),
            ("13800000001".to_string(), "opted_out".to_string())
        ]
    );
    // The backend saw root, mapped to its account, as an admin.
    let (what, caller) = server.backend.last_call().unwrap();
    assert_eq!(what, "submit");
    assert_eq!(caller.uid, 0);
    assert_eq!(caller.account.as_deref(), Some("shop"));
    assert!(caller.admin);
}

#[tokio::test]
async fn admin_acts_for_another_account() {
    let server = TestServer::start(MemBackend::new());
    let body =
        serde_json::to_vec(&json!({"to": ["13912345678"], "text": "hi", "account": "clinic"}))
            .unwrap();
    let (status, v) = call(&server, Method::POST, "/v1/messages", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let (_, caller) = server.backend.last_call().unwrap();
    assert_eq!(caller.account.as_deref(), Some("clinic"));
    // Message 1 belongs to clinic: root's own account (shop) does not see it...
    let got = call(&server, Method::GET, "/v1/messages/1", b"").await;
    assert_error(&got, 404, "not_found");
    // ...but acting for clinic does.
    let (status, v) = call(&server, Method::GET, "/v1/messages/1?account=clinic", b"").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["to"], "13912345678");
}

/// A request naming the account it acts for in `x-smsgate-account` (as `smsgate web` does).
async fn call_as(
    server: &TestServer,
    account: &str,
    method: Method,
    uri: &str,
    body: &[u8],
) -> (StatusCode, Value) {
    let (status, bytes) = server
        .client()
        .acting_for(account)
        .raw(method, uri, body.to_vec())
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_front_end_acts_for_the_account_it_names_and_no_more() {
    // Not listed in `frontends` (even root, an admin): the header is refused.
    let server = TestServer::start(MemBackend::new());
    let body = send_body(&["13912345678"], "hi");
    let got = call_as(&server, "clinic", Method::POST, "/v1/messages", &body).await;
    assert_error(&got, 403, "forbidden");
    assert!(got.1.to_string().contains("not a front end"), "{}", got.1);
    drop(server);

    // Listed: it acts as the named account, with that account's rights only.
    let mut access = api_support::access();
    access.frontends = vec![nix::unistd::getuid().as_raw()];
    let server = TestServer::start_with(MemBackend::new(), access);
    let (status, v) = call_as(&server, "clinic", Method::POST, "/v1/messages", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let (_, caller) = server.backend.last_call().unwrap();
    assert_eq!(caller.account.as_deref(), Some("clinic"));
    assert!(!caller.admin);
    let named =
        serde_json::to_vec(&json!({"to": ["13912345678"], "text": "hi", "account": "shop"}))
            .unwrap();
    let got = call_as(&server, "clinic", Method::POST, "/v1/messages", &named).await;
    assert_error(&got, 403, "forbidden");
    let got = call_as(&server, "clinic", Method::POST, "/v1/messages/1/retry", b"").await;
    assert_error(&got, 403, "forbidden");
    let got = call_as(&server, "clinic", Method::GET, "/v1/accounts", b"").await;
    assert_error(&got, 403, "forbidden");
    let got = call_as(&server, "", Method::GET, "/v1/inbox", b"").await;
    assert_error(&got, 400, "invalid_field");
    // Chinese account names travel percent-encoded.
    call_as(&server, "商户", Method::GET, "/v1/inbox", b"").await;
    let (_, caller) = server.backend.last_call().unwrap();
    assert_eq!(caller.account.as_deref(), Some("商户"));
    // Key checks are for front ends (and admins): this one passes the rights check and meets
    // the test backend, which has no admin operations (404).
    let verify = serde_json::to_vec(&json!({"key": "sgk_x", "ip": "127.0.0.1"})).unwrap();
    let got = call(&server, Method::POST, "/v1/keys/verify", &verify).await;
    assert_error(&got, 404, "not_found");
}

#[tokio::test]
async fn key_routes_reach_the_backend_and_refuse_malformed_bodies() {
    let server = TestServer::start(MemBackend::new());
    // Root is an admin: the routes exist and reach the backend (whose lack of admin operations
    // answers 404), and a body without its fields is 400 before it gets there.
    let verify = serde_json::to_vec(&json!({"key": "sgk_x", "ip": "127.0.0.1"})).unwrap();
    let got = call(&server, Method::POST, "/v1/keys/verify", &verify).await;
    assert_error(&got, 404, "not_found");
    let got = call(&server, Method::GET, "/v1/keys", b"").await;
    assert_error(&got, 404, "not_found");
    let got = call(&server, Method::DELETE, "/v1/keys/abc", b"").await;
    assert_error(&got, 404, "not_found");
    let bad = serde_json::to_vec(&json!({"key": "sgk_x"})).unwrap();
    let got = call(&server, Method::POST, "/v1/keys/verify", &bad).await;
    assert_error(&got, 400, "invalid_field");
}

#[tokio::test]
async fn message_view_list_cancel_and_retry() {
    let server = TestServer::start(MemBackend::new());
    let long = "长".repeat(100); // two UCS2 parts
    let (status, v) = call(
        &server,
        Method::POST,
        "/v1/messages",
        &send_body(&["13912345678", "13912345679"], &long),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["parts"], 2);

    let (status, v) = call(&server, Method::GET, "/v1/messages/1", b"").await;
    assert_eq!(status, StatusCode::OK);
    let view: MessageView = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(view.id, MessageId(1));
    assert_eq!(view.state, MessageState::Queued);
    assert_eq!(view.parts.len(), 2);
    for key in ["id", "to", "state", "parts", "created", "sent", "delivered"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    for key in ["seq", "state", "sim", "mr", "error"] {
        assert!(
            v["parts"][0].get(key).is_some(),
            "missing parts[].{key} in {v}"
        );
    }

    let (status, v) = call(
        &server,
        Method::GET,
        "/v1/messages?state=queued&limit=1",
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["messages"].as_array().unwrap().len(), 1);
    assert_eq!(v["next_after"], 1);
    let (_, v) = call(&server, Method::GET, "/v1/messages?after=1", b"").await;
    assert_eq!(v["messages"][0]["id"], 2);

    let (status, v) = call(&server, Method::DELETE, "/v1/messages/1", b"").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "cancelled");
    let got = call(&server, Method::DELETE, "/v1/messages/1", b"").await;
    assert_error(&got, 409, "conflict");

    let got = call(&server, Method::POST, "/v1/messages/2/retry", b"").await;
    assert_error(&got, 409, "conflict");
    server.backend.set_state(2, MessageState::Unknown);
    let (status, v) = call(&server, Method::POST, "/v1/messages/2/retry", b"").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "scheduled");

    // Settle: the verdict on an unknown message's parts (the real store's semantics, credit
    // and audit are proved in tests/e2e_settle.rs).
    server.backend.set_state(1, MessageState::Unknown);
    let (status, v) = call(&server, Method::GET, "/v1/messages?state=unknown", b"").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let listed: Vec<u64> = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, vec![1]);
    for (body, code) in [
        (&b"{}"[..], "invalid_field"),
        (br#"{"sent": "yes"}"#, "invalid_field"),
        (br#"{"sent": true, "part": 1}"#, "invalid_field"),
        (b"sent", "bad_json"),
        (b"", "bad_json"),
    ] {
        let got = call(&server, Method::POST, "/v1/messages/1/settle", body).await;
        assert_error(&got, 400, code);
    }
    assert_error(
        &call(&server, Method::GET, "/v1/messages/1/settle", b"").await,
        405,
        "method_not_allowed",
    );
    let (status, v) = call(
        &server,
        Method::POST,
        "/v1/messages/1/settle",
        br#"{"sent": false}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "failed");
    assert_eq!(server.backend.last_call().unwrap().0, "settle");
    // Nothing unknown left to settle: 409 with the backend's reason.
    let got = call(
        &server,
        Method::POST,
        "/v1/messages/1/settle",
        br#"{"sent": true}"#,
    )
    .await;
    assert_error(&got, 409, "conflict");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no unknown part"),
        "{}",
        got.1
    );
    assert_error(
        &call(
            &server,
            Method::POST,
            "/v1/messages/999/settle",
            br#"{"sent": true}"#,
        )
        .await,
        404,
        "not_found",
    );

    assert_error(
        &call(&server, Method::GET, "/v1/messages/999", b"").await,
        404,
        "not_found",
    );
    assert_error(
        &call(&server, Method::GET, "/v1/messages/%FF%FE", b"").await,
        404,
        "not_found",
    );
    assert_error(
        &call(&server, Method::DELETE, "/v1/messages/%C3%28", b"").await,
        404,
        "not_found",
    );
    assert_error(
        &call(&server, Method::POST, "/v1/messages/%FF/retry", b"").await,
        404,
        "not_found",
    );
    assert_error(
        &call(&server, Method::GET, "/v1/messages?limit=%FF", b"").await,
        400,
        "invalid_field",
    );
    assert_error(
        &call(&server, Method::GET, "/v1/messages?bogus=1", b"").await,
        400,
        "invalid_field",
    );
    assert_error(
        &call(&server, Method::GET, "/v1/messages/abc", b"").await,
        404,
        "not_found",
    );
    assert_error(
        &call(&server, Method::GET, "/v1/messages?state=lost", b"").await,
        400,
        "invalid_field",
    );
    assert_error(
        &call(&server, Method::GET, "/v1/messages?limit=0", b"").await,
        400,
        "invalid_field",
    );
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let server = TestServer::start(MemBackend::new());
    let cases: Vec<(&[u8], u16, &str)> = vec![
        (b"{\"to\": [\"139\"", 400, "bad_json"),
        (b"not json at all", 400, "bad_json"),
        (b"", 400, "bad_json"),
        (b"\xff\xfe\x00", 400, "bad_json"),
        (
            b"{\"to\": \"13912345678\", \"text\": \"x\"}",
            400,
            "invalid_field",
        ),
        (
            b"{\"to\": [13912345678], \"text\": \"x\"}",
            400,
            "invalid_field",
        ),
        (b"{\"to\": [\"139\"]}", 400, "invalid_field"),
        (
            b"{\"to\": [\"139\"], \"text\": \"x\", \"prio\": 1}",
            400,
            "invalid_field",
        ),
        (
            b"{\"to\": [\"139\"], \"text\": \"x\", \"priority\": \"urgent\"}",
            400,
            "invalid_field",
        ),
        (
            b"{\"to\": [\"139\"], \"text\": \"x\", \"validity\": \"forever\"}",
            400,
            "invalid_field",
        ),
        (
            b"{\"to\": [\"139\"], \"text\": \"x\", \"validity\": \"1m\"}",
            400,
            "invalid_field",
        ),
        (b"{\"to\": [], \"text\": \"x\"}", 400, "invalid_field"),
        (b"{\"to\": [\"139\"], \"text\": \"\"}", 400, "invalid_field"),
        (b"[1, 2, 3]", 400, "invalid_field"),
    ];
    for (body, status, code) in cases {
        let got = call(&server, Method::POST, "/v1/messages", body).await;
        assert_eq!(
            got.0.as_u16(),
            status,
            "{:?} -> {}",
            String::from_utf8_lossy(body),
            got.1
        );
        assert_error(&got, status, code);
    }
    let too_long = "x".repeat(MAX_TEXT_CHARS + 1);
    let got = call(
        &server,
        Method::POST,
        "/v1/messages",
        &send_body(&["139"], &too_long),
    )
    .await;
    assert_error(&got, 400, "invalid_field");
    // The server is still up after all that.
    let (status, _) = call(&server, Method::GET, "/v1/health", b"").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn recipient_limit_is_ten_thousand() {
    let server = TestServer::start(MemBackend::new());
    let numbers: Vec<String> = (0..=MAX_RECIPIENTS).map(|i| format!("139{i:08}")).collect();
    let refs: Vec<&str> = numbers.iter().map(String::as_str).collect();

    let got = call(
        &server,
        Method::POST,
        "/v1/messages",
        &send_body(&refs, "hi"),
    )
    .await;
    assert_error(&got, 400, "invalid_field");
    assert!(got.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("10001"));

    let (status, v) = call(
        &server,
        Method::POST,
        "/v1/messages",
        &send_body(&refs[..MAX_RECIPIENTS], "hi"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(v["ids"].as_array().unwrap().len(), MAX_RECIPIENTS);
}

#[tokio::test]
async fn oversize_body_is_413_and_server_survives() {
    let server = TestServer::start(MemBackend::new());
    let mut body = b"{\"to\": [\"".to_vec();
    body.extend(std::iter::repeat_n(b'1', MAX_BODY_BYTES + 1));
    body.extend(b"\"], \"text\": \"x\"}");
    let got = call(&server, Method::POST, "/v1/messages", &body).await;
    assert_error(&got, 413, "too_large");
    let (status, _) = call(&server, Method::GET, "/v1/health", b"").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_route_and_wrong_method() {
    let server = TestServer::start(MemBackend::new());
    assert_error(
        &call(&server, Method::GET, "/v2/messages", b"").await,
        404,
        "not_found",
    );
    assert_error(
        &call(&server, Method::GET, "/", b"").await,
        404,
        "not_found",
    );
    assert_error(
        &call(&server, Method::PUT, "/v1/messages", b"{}").await,
        405,
        "method_not_allowed",
    );
    assert_error(
        &call(&server, Method::GET, "/v1/messages/1/retry", b"").await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn policy_and_credit_refusals_keep_their_status() {
    let server = TestServer::start(MemBackend::new());
    let got = call(
        &server,
        Method::POST,
        "/v1/messages",
        &send_body(&["139"], "网上赌博"),
    )
    .await;
    assert_error(&got, 422, "content_prohibited");
    let body =
        serde_json::to_vec(&json!({"to": ["139"], "text": "x", "account": "broke"})).unwrap();
    let got = call(&server, Method::POST, "/v1/messages", &body).await;
    assert_error(&got, 402, "insufficient_credit");
}

#[tokio::test]
async fn modems_inbox_health_metrics() {
    let server = TestServer::start(MemBackend::new());
    let (status, v) = call(&server, Method::GET, "/v1/modems", b"").await;
    assert_eq!(status, StatusCode::OK);
    let modems: Vec<ModemView> = serde_json::from_value(v).unwrap();
    assert_eq!(modems.len(), 2);
    assert_eq!(modems[0].quota_left.as_ref().unwrap().hour, 188);

    let (status, v) = call(&server, Method::GET, "/v1/inbox?limit=10", b"").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["messages"][0]["text"], "退订");

    let health = server.client().health().await.unwrap();
    assert_eq!(health.status, HealthStatus::Ok);

    let (status, bytes) = server
        .client()
        .raw(Method::GET, "/metrics", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&bytes).contains("smsgate_parts_sent_total 12"));
}

#[tokio::test]
async fn garbage_on_the_socket_does_not_take_the_server_down() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start(MemBackend::new());
    for garbage in [
        &b"\x00\x01\x02\xff\r\n\r\n"[..],
        b"GET /v1/health HTTP/9.9\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut s = tokio::net::UnixStream::connect(&server.socket)
            .await
            .unwrap();
        s.write_all(garbage).await.unwrap();
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    }
    // A client that connects and goes away mid-request.
    drop(
        tokio::net::UnixStream::connect(&server.socket)
            .await
            .unwrap(),
    );
    let (status, _) = call(&server, Method::GET, "/v1/health", b"").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn after_shutdown_mutations_are_refused_with_503() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let listener = smsgate::api::bind_socket(&socket).unwrap();
    let flag = Arc::new(AtomicBool::new(false));
    let app = smsgate::api::router(MemBackend::new(), api_support::access(), Arc::clone(&flag));
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<smsgate::api::server::Peer>(),
        )
        .await
    });
    let client = smsgate::api::client::ApiClient::new(&socket);
    let (status, _) = client
        .raw(Method::POST, "/v1/messages", send_body(&["139"], "x"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    flag.store(true, Ordering::SeqCst);
    let (status, bytes) = client
        .raw(Method::POST, "/v1/messages", send_body(&["139"], "x"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let err: ErrorBody = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(err.error.code, "shutting_down");
    // Reads still work while draining.
    let (status, _) = client
        .raw(Method::GET, "/v1/modems", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn graceful_shutdown_ends_serve_and_a_stale_socket_is_replaced() {
    let mut server = TestServer::start(MemBackend::new());
    let socket = server.socket.clone();
    server.stop();
    let result = server.done.take().unwrap().await.unwrap();
    assert!(result.is_ok(), "{result:?}");
    // The socket file is left behind (as after a crash); binding again replaces it.
    assert!(socket.exists());
    let again = smsgate::api::bind_socket(&socket);
    assert!(again.is_ok(), "{again:?}");
    // But a live server's socket is never stolen.
    let live = smsgate::api::bind_socket(&socket);
    assert!(live.is_err());
    // And a regular file is never deleted.
    let file = server.dir.path().join("not-a-socket");
    std::fs::write(&file, "x").unwrap();
    assert!(smsgate::api::bind_socket(&file).is_err());
    assert!(file.exists());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// Any body to any route gets an answer with a JSON body (never a hang, a crash or a
    /// non-JSON error), and the server keeps serving.
    #[test]
    fn any_body_gets_a_json_answer(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        route in 0usize..4,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let server = TestServer::start(MemBackend::new());
            let (method, uri) = [
                (Method::POST, "/v1/messages"),
                (Method::POST, "/v1/messages/1/retry"),
                (Method::DELETE, "/v1/messages/1"),
                (Method::PATCH, "/v1/modems"),
            ][route].clone();
            let (status, bytes) = server.client().raw(method, uri, body).await.unwrap();
            let json: Result<Value, _> = serde_json::from_slice(&bytes);
            assert!(json.is_ok(), "{status}: {:?}", String::from_utf8_lossy(&bytes));
            if !status.is_success() {
                let err: ErrorBody = serde_json::from_slice(&bytes).unwrap();
                assert!(!err.error.code.is_empty());
            }
            let (status, _) = server.client().raw(Method::GET, "/v1/health", Vec::new()).await.unwrap();
            assert_eq!(status, StatusCode::OK);
        });
    }
}

/// A kept-alive HTTP connection that has completed one request (so the server has surely
/// accepted and counted it).
async fn kept_alive(
    socket: &std::path::Path,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>> {
    use http_body_util::BodyExt;
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/v1/health")
        .header("host", "smsgate")
        .body(http_body_util::Full::new(hyper::body::Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.into_body().collect().await.unwrap();
    sender
}

#[tokio::test]
async fn connections_are_capped_per_uid() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let listener = smsgate::api::bind_socket(&socket).unwrap();
    let limits = smsgate::api::ConnectionLimits {
        total: 8,
        per_uid: 2,
        ..Default::default()
    };
    tokio::spawn(smsgate::api::serve_with(
        listener,
        limits,
        MemBackend::new(),
        api_support::access(),
        std::future::pending(),
    ));
    let first = kept_alive(&socket).await;
    let _second = kept_alive(&socket).await;
    // A third connection of the same uid is closed before it is read.
    let client = smsgate::api::client::ApiClient::new(&socket);
    let refused = client.raw(Method::GET, "/v1/health", Vec::new()).await;
    assert!(
        matches!(refused, Err(smsgate::api::client::ClientError::Protocol(_))),
        "{refused:?}"
    );
    // Closing one gives its slot back (the server notices the close asynchronously: wait for
    // it, bounded).
    drop(first);
    let mut served = false;
    for _ in 0..200 {
        if let Ok((status, _)) = client.raw(Method::GET, "/v1/health", Vec::new()).await {
            assert_eq!(status, StatusCode::OK);
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        served,
        "the slot of a closed connection was never given back"
    );
}

/// Reads from `stream` until the server closes it; panics if it stays open past `within`.
/// Returns what the server sent before closing.
async fn closed_by_server(
    stream: &mut tokio::net::UnixStream,
    within: std::time::Duration,
) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept a slow connection open for more than {within:?}"
    );
    got
}

/// Issue 8 (waits without bounds): a client that sends its request a byte at a time must not
/// hold a connection slot. 64 slow connections of one uid (its whole quota: 62 trickling their
/// headers, one its body, one kept alive and idle) sit on the server: other uids are still
/// served, and every slow connection is closed once its time is up (a late body gets 408), its
/// slot given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_disconnected_and_their_slots_freed() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("api.sock");
    let listener = smsgate::api::bind_socket(&socket).unwrap();
    let timeout = Duration::from_secs(2);
    let limits = smsgate::api::ConnectionLimits {
        total: 256,
        per_uid: 64,
        header_timeout: timeout,
        body_timeout: timeout,
    };
    tokio::spawn(smsgate::api::serve_with(
        listener,
        limits,
        MemBackend::new(),
        api_support::access(),
        std::future::pending(),
    ));
    let started = Instant::now();
    let mut headers = Vec::new();
    for _ in 0..62 {
        let mut s = tokio::net::UnixStream::connect(&socket).await.unwrap();
        s.write_all(b"G").await.unwrap();
        headers.push(s);
    }
    // A kept-alive connection left idle after one request holds a slot too, until the header
    // timeout (which runs while the server waits for the next request).
    let mut idle = tokio::net::UnixStream::connect(&socket).await.unwrap();
    idle.write_all(b"GET /v1/health HTTP/1.1\r\nhost: smsgate\r\n\r\n")
        .await
        .unwrap();
    let mut body = tokio::net::UnixStream::connect(&socket).await.unwrap();
    body.write_all(
        b"POST /v1/messages HTTP/1.1\r\nhost: smsgate\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    // Trickle: one more byte every 300 ms on each (a deadline per read would never fire),
    // until the server closes them.
    let trickle = tokio::spawn(async move {
        let request = b"ET /v1/health HTTP/1.1\r\nhost: smsgate\r\n";
        'bytes: for byte in request.iter() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            for s in headers.iter_mut() {
                if s.write_all(&[*byte]).await.is_err() {
                    break 'bytes;
                }
            }
            if body.write_all(b" ").await.is_err() {
                break;
            }
        }
        (headers, body)
    });
    let client = smsgate::api::client::ApiClient::new(&socket);
    // The uid's 64 slots are taken: its 65th connection is closed unread...
    let refused = client.raw(Method::GET, "/v1/health", Vec::new()).await;
    assert!(
        matches!(refused, Err(smsgate::api::client::ClientError::Protocol(_))),
        "{refused:?}"
    );
    // ...while another uid is served (needs root to run a client under another uid).
    if nix::unistd::geteuid().is_root() {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_smsgate"))
            .args(["modems", "--json", "--socket"])
            .arg(&socket)
            .env_remove("SMSGATE_SOCKET")
            .uid(4001)
            .gid(4001)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("skipped the other-uid client: needs root");
    }
    assert!(
        started.elapsed() < timeout,
        "the test was too slow to see the slots taken"
    );
    // Every slow connection is closed once its time is up, however it trickles; the late body
    // is answered 408 with a JSON error first.
    let (mut headers, mut body) = trickle.await.unwrap();
    for s in headers.iter_mut() {
        closed_by_server(s, timeout * 3).await;
    }
    let answer =
        String::from_utf8_lossy(&closed_by_server(&mut body, timeout * 3).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"timeout""#), "{answer}");
    let answer =
        String::from_utf8_lossy(&closed_by_server(&mut idle, timeout * 3).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The slots are given back: the uid is served again.
    let mut served = false;
    for _ in 0..300 {
        if let Ok((status, _)) = client.raw(Method::GET, "/v1/health", Vec::new()).await {
            assert_eq!(status, StatusCode::OK);
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        served,
        "the slots of closed slow connections were never given back"
    );
}

/// A slow client does not delay a shutdown either: once it begins, a connection still sending
/// its headers is closed, a body still arriving is answered 503, and serve returns at once
/// (the daemon stops its runner and modems only after serve returns).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_slow_clients() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("api.sock");
    let listener = smsgate::api::bind_socket(&socket).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(smsgate::api::serve(
        listener,
        MemBackend::new(),
        api_support::access(),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut head = tokio::net::UnixStream::connect(&socket).await.unwrap();
    head.write_all(b"GET /v1/hea").await.unwrap();
    let mut body = tokio::net::UnixStream::connect(&socket).await.unwrap();
    body.write_all(
        b"POST /v1/messages HTTP/1.1\r\nhost: smsgate\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    // Both are surely accepted (and the body's request dispatched) before the stop.
    let (status, _) = smsgate::api::client::ApiClient::new(&socket)
        .raw(Method::GET, "/v1/health", Vec::new())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let asked = Instant::now();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(3), done)
        .await
        .expect("serve waited for the slow clients");
    assert!(result.unwrap().is_ok());
    assert!(asked.elapsed() < Duration::from_secs(3));
    closed_by_server(&mut head, Duration::from_secs(1)).await;
    let answer =
        String::from_utf8_lossy(&closed_by_server(&mut body, Duration::from_secs(1)).await)
            .into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("shutting_down"), "{answer}");
}
