//! TEST DOUBLE, not the product: an in-memory [`Backend`] for the API and CLI client tests, and
//! a harness that serves the real API server on a real Unix socket in a tempdir. The daemon's
//! real backend (store, policy, bank) lives elsewhere; this one only does what the tests need to
//! see each route, status code and refusal path:
//! - a recipient starting with "000" is refused as `invalid_number`, one in `opted_out` as
//!   `opted_out`; a text containing "赌博" is a 422 policy refusal; account "broke" gets 402;
//! - messages start `queued`; cancel works on queued only (else 409); retry on failed/unknown;
//! - non-admin callers see only their account's messages (others are 404).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use smsgate::api::types::*;
use smsgate::api::{AccessMap, AccountAccess, ApiError, Backend, Caller};

#[derive(Default)]
pub struct MemState {
    pub next_id: u64,
    pub messages: BTreeMap<u64, (String, MessageView)>,
    pub calls: Vec<(String, Caller)>,
}

#[derive(Default)]
pub struct MemBackend {
    pub state: Mutex<MemState>,
    pub opted_out: Vec<String>,
}

impl MemBackend {
    pub fn new() -> Arc<MemBackend> {
        Arc::new(MemBackend {
            state: Mutex::new(MemState {
                next_id: 1,
                ..Default::default()
            }),
            opted_out: vec!["13800000001".into()],
        })
    }

    fn record(&self, what: &str, caller: &Caller) {
        self.state
            .lock()
            .unwrap()
            .calls
            .push((what.to_owned(), caller.clone()));
    }

    pub fn last_call(&self) -> Option<(String, Caller)> {
        self.state.lock().unwrap().calls.last().cloned()
    }

    /// Puts a message into a state directly (as the scheduler would).
    pub fn set_state(&self, id: u64, state: MessageState) {
        if let Some((_, m)) = self.state.lock().unwrap().messages.get_mut(&id) {
            m.state = state;
            for p in &mut m.parts {
                p.state = state;
            }
        }
    }

    fn visible(caller: &Caller, owner: &str) -> bool {
        caller.account.as_deref() == Some(owner) || (caller.admin && caller.account.is_none())
    }
}

fn parts_of(text: &str) -> u32 {
    // UCS2 when any character is outside ASCII (close enough for a double): 70/67 per part.
    let n = text.chars().count() as u32;
    let (single, multi) = if text.is_ascii() {
        (160, 153)
    } else {
        (70, 67)
    };
    if n <= single {
        1
    } else {
        n.div_ceil(multi)
    }
}

impl Backend for MemBackend {
    async fn submit(&self, caller: Caller, req: SendRequest) -> Result<SendResponse, ApiError> {
        self.record("submit", &caller);
        let account = caller.account.clone().unwrap_or_default();
        if req.text.contains("赌博") {
            return Err(ApiError::Policy {
                code: "content_prohibited".into(),
                message: "the text falls in a prohibited category (gambling)".into(),
            });
        }
        if account == "broke" {
            return Err(ApiError::InsufficientCredit(format!(
                "account broke has 0 credits left, this request needs {}",
                req.to.len()
            )));
        }
        let parts = parts_of(&req.text);
        let mut st = self.state.lock().unwrap();
        let mut ids = Vec::new();
        let mut refused = Vec::new();
        for to in &req.to {
            if to.starts_with("000") || to.is_empty() {
                refused.push(Refusal {
                    to: to.clone(),
                    code: "invalid_number".into(),
                    message: format!("{to:?} is not a phone number"),
                });
                continue;
            }
            if self.opted_out.contains(to) {
                refused.push(Refusal {
                    to: to.clone(),
                    code: "opted_out".into(),
                    message: "the recipient replied TD".into(),
                });
                continue;
            }
            let id = st.next_id;
            st.next_id += 1;
            let view = MessageView {
                id: MessageId(id),
                to: to.clone(),
                state: MessageState::Queued,
                parts: (1..=parts)
                    .map(|seq| PartView {
                        seq,
                        state: MessageState::Queued,
                        sim: None,
                        mr: None,
                        error: None,
                        msg_id: None,
                    })
                    .collect(),
                created: jiff::Timestamp::from_second(1_780_000_000).unwrap(),
                sent: None,
                delivered: None,
                sender: None,
                gateway: None,
                src_id: None,
            };
            st.messages.insert(id, (account.clone(), view));
            ids.push(MessageId(id));
        }
        Ok(SendResponse {
            ids,
            parts,
            refused,
        })
    }

    async fn get(&self, caller: Caller, id: MessageId) -> Result<MessageView, ApiError> {
        self.record("get", &caller);
        let st = self.state.lock().unwrap();
        match st.messages.get(&id.0) {
            Some((owner, m)) if Self::visible(&caller, owner) => Ok(m.clone()),
            _ => Err(ApiError::NotFound(format!("no message with id {id}"))),
        }
    }

    async fn list(&self, caller: Caller, q: ListQuery) -> Result<MessageList, ApiError> {
        self.record("list", &caller);
        let st = self.state.lock().unwrap();
        let limit = q.limit.unwrap_or(100) as usize;
        let messages: Vec<MessageView> = st
            .messages
            .values()
            .filter(|(owner, m)| {
                Self::visible(&caller, owner)
                    && q.state.is_none_or(|s| s == m.state)
                    && q.after.is_none_or(|a| m.id > a)
            })
            .take(limit)
            .map(|(_, m)| m.clone())
            .collect();
        let next_after = (messages.len() == limit)
            .then(|| messages.last().map(|m| m.id))
            .flatten();
        Ok(MessageList {
            messages,
            next_after,
        })
    }

    async fn cancel(&self, caller: Caller, id: MessageId) -> Result<MessageView, ApiError> {
        self.record("cancel", &caller);
        let mut st = self.state.lock().unwrap();
        match st.messages.get_mut(&id.0) {
            Some((owner, m)) if Self::visible(&caller, owner) => {
                if m.state != MessageState::Queued {
                    return Err(ApiError::Conflict(format!(
                        "message {id} is {}: only a message not yet sending can be cancelled",
                        m.state
                    )));
                }
                m.state = MessageState::Cancelled;
                for p in &mut m.parts {
                    p.state = MessageState::Cancelled;
                }
                Ok(m.clone())
            }
            _ => Err(ApiError::NotFound(format!("no message with id {id}"))),
        }
    }

    async fn retry(&self, caller: Caller, id: MessageId) -> Result<MessageView, ApiError> {
        self.record("retry", &caller);
        let mut st = self.state.lock().unwrap();
        match st.messages.get_mut(&id.0) {
            Some((_, m)) => {
                if !matches!(m.state, MessageState::Failed | MessageState::Unknown) {
                    return Err(ApiError::Conflict(format!(
                        "message {id} is {}: only failed or unknown messages are retried",
                        m.state
                    )));
                }
                m.state = MessageState::Scheduled;
                Ok(m.clone())
            }
            None => Err(ApiError::NotFound(format!("no message with id {id}"))),
        }
    }

    async fn settle(
        &self,
        caller: Caller,
        id: MessageId,
        sent: bool,
    ) -> Result<MessageView, ApiError> {
        self.record("settle", &caller);
        let mut st = self.state.lock().unwrap();
        match st.messages.get_mut(&id.0) {
            Some((_, m)) => {
                if m.state != MessageState::Unknown {
                    return Err(ApiError::Conflict(format!(
                        "message {id} has no unknown part to settle (it is {})",
                        m.state
                    )));
                }
                m.state = if sent {
                    MessageState::Sent
                } else {
                    MessageState::Failed
                };
                Ok(m.clone())
            }
            None => Err(ApiError::NotFound(format!("no message with id {id}"))),
        }
    }

    async fn modems(&self, caller: Caller) -> Result<Vec<ModemView>, ApiError> {
        self.record("modems", &caller);
        Ok(vec![
            ModemView {
                port: "/dev/gsm/usb1-1.2-if00".into(),
                state: ModemState::Ready,
                iccid: Some("89860012345678901234".into()),
                imsi: Some("460001234567890".into()),
                operator: Some("CHINA MOBILE".into()),
                signal_dbm: Some(-71),
                counters: ModemCounters {
                    sent: 12,
                    failed: 1,
                    delivered: 10,
                    received: 2,
                },
                quota_left: Some(QuotaLeft {
                    minute: 9,
                    hour: 188,
                    day: 988,
                }),
                quota_used: Some(QuotaLeft {
                    minute: 1,
                    hour: 12,
                    day: 12,
                }),
                last_error: Some("+CMS ERROR: 42 (congestion)".into()),
            },
            ModemView {
                port: "/dev/gsm/usb1-1.3-if02".into(),
                state: ModemState::Starting,
                iccid: None,
                imsi: None,
                operator: None,
                signal_dbm: None,
                counters: ModemCounters::default(),
                quota_left: None,
                quota_used: None,
                last_error: None,
            },
        ])
    }

    async fn inbox(&self, caller: Caller, _q: InboxQuery) -> Result<InboxList, ApiError> {
        self.record("inbox", &caller);
        Ok(InboxList {
            messages: vec![InboundView {
                id: 7,
                from: "+8613912345678".into(),
                text: "退订".into(),
                received: jiff::Timestamp::from_second(1_780_000_100).unwrap(),
                sim: Some("89860012345678901234".into()),
            }],
            next_after: None,
        })
    }

    async fn health(&self, caller: Caller) -> Result<Health, ApiError> {
        self.record("health", &caller);
        Ok(Health {
            status: HealthStatus::Ok,
            version: "test".into(),
            modems_ready: 1,
            modems_total: 2,
            pending: self.state.lock().unwrap().messages.len() as u64,
            store_error: None,
        })
    }

    async fn metrics(&self, caller: Caller) -> Result<String, ApiError> {
        self.record("metrics", &caller);
        Ok("# TYPE smsgate_parts_sent_total counter\nsmsgate_parts_sent_total 12\n".into())
    }
}

/// uid 0 (the tests run as root) belongs to account "shop"; uid 4001 to "clinic"; members of
/// gid 4100 to "school"; gid 4200 is the admin group.
pub fn access() -> AccessMap {
    AccessMap {
        accounts: vec![
            AccountAccess {
                name: "shop".into(),
                uids: vec![0],
                gids: vec![],
            },
            AccountAccess {
                name: "clinic".into(),
                uids: vec![4001],
                gids: vec![],
            },
            AccountAccess {
                name: "school".into(),
                uids: vec![],
                gids: vec![4100],
            },
        ],
        admin_gid: Some(4200),
        frontends: vec![],
    }
}

/// A running API server on a socket in a tempdir; dropped, it shuts down.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub backend: Arc<MemBackend>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts the real server (bind_socket + serve) on the current tokio runtime.
    pub fn start(backend: Arc<MemBackend>) -> TestServer {
        TestServer::start_with(backend, access())
    }

    /// [`TestServer::start`] with another access map (e.g. with `frontends`).
    pub fn start_with(backend: Arc<MemBackend>, access: AccessMap) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        // Other uids (the CLI tests run the binary as uid 4001...) must reach the socket.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("api.sock");
        let listener = smsgate::api::bind_socket(&socket).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(smsgate::api::serve(
            listener,
            Arc::clone(&backend),
            access,
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            dir,
            socket,
            backend,
            stop: Some(stop),
            done: Some(done),
        }
    }

    pub fn client(&self) -> smsgate::api::client::ApiClient {
        smsgate::api::client::ApiClient::new(&self.socket)
    }

    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}
