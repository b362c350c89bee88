//! smsgate: the engine of a business-SMS platform that drives banks of GSM and PHS modems
//! with AT commands in PDU mode. This crate is the library behind the one binary `smsgate`;
//! `main.rs` only parses arguments and calls [`cli::run`].
//!
//! # Layout
//! Modules follow the way a message travels (see DESIGN.md):
//!
//! - [`pdu`]: sans-I/O SMS codec (3GPP TS 23.040 / 23.038): addresses, time stamps, DCS, UDH,
//!   GSM 7-bit and UCS2 text, SUBMIT / DELIVER / STATUS-REPORT, splitting and reassembly.
//!   No input makes it panic.
//! - [`cmpp`]: sans-I/O codec of CMPP 2.0/3.0 (the carrier gateway protocol of 106 numbers):
//!   typed PDUs of both versions, framing, the MD5 login, Msg_Id packing, SUBMIT_RESP classes.
//! - [`bank`]: port discovery (globs, inotify hot-plug) and supervision of one modem actor per
//!   port (open, restart with back-off); a running modem is handed to the daemon through
//!   `bank::Host`, so the bank knows nothing of the store.
//! - [`at`]: sans-I/O AT layer (3GPP TS 27.005 / 27.007): the digester (bytes in, events out),
//!   typed commands with reply parsers and timeouts, +CMS/+CME errors with their class.
//! - [`modem`]: one actor per serial port (init, identity, health, send a part, inbound with
//!   ack-then-delete, recovery; `modem/actor/` by those seams), vendor dialects as data, a
//!   part encoded for the dialect at send time (`modem/encode.rs`: destination form, SMSC,
//!   PDU or text flow), and `AtSession` for `smsgate diag`.
//! - [`gateway`]: the carrier-gateway channel for 106 numbers: one CMPP client link actor per
//!   connection (login, window, heartbeat, reconnect, rate limit), the payload's fate as for
//!   modems, reports and MO handed over with ack-then-DELIVER_RESP. The daemon drives it
//!   (`daemon/gateways.rs`).
//! - [`number`]: Chinese numbering: recipient validation and canonical form, carrier hints from
//!   prefixes and IMSIs, masking numbers for logs.
//! - [`store`]: the SQLite file (WAL), its migrations and every transaction; no SQL elsewhere.
//!   `store/messages/` by section (transitions, acceptance, claims and outcomes, status reports,
//!   operator actions, queries); `store/contract/` by part (accounts, credit, blacklists,
//!   opt-outs, review); `store/acceptance.rs` is a send request's transaction body (decided by
//!   `policy::decide`, then written). The store applies the scheduler's decisions; it makes none.
//!   Times are Unix milliseconds in every table (the audit log's hashed `time` alone keeps
//!   whole seconds); a part is kept as the codec's neutral SMS-SUBMIT, which the modem
//!   encodes for its dialect when it sends it.
//! - [`ids`]: the row ids and saturating time arithmetic the store and the scheduler share; a
//!   leaf, so neither depends on the other for them.
//! - [`scheduler`]: pure decisions `(state, now) -> actions`: which due part goes to which SIM,
//!   quotas and pacing, carrier affinity, when to wake next, and what a failed send means (retry
//!   at T avoiding the SIM, fail for good, rest the SIM), which the store only applies.
//! - [`policy`]: the contract in code: accounts and credit lots, content rules and review,
//!   blacklists, opt-outs, signatures and send windows; pure decisions over store data.
//! - [`audit`]: the append-only, hash-chained send log: record encoding, verify, retention,
//!   export for lawful requests (its SQL is in `store::audit`).
//! - [`api`]: the HTTP/JSON API on the daemon's Unix socket: peer credentials -> account,
//!   request shapes shared with the CLI clients, errors as JSON with their HTTP status. The
//!   message routes (`server.rs`), the admin routes (`admin.rs`) and the console's account-scoped
//!   routes (`console.rs`: quote, recipients check, statistics, send log; routers the server
//!   merges) share their extractors through `extract.rs`; so do the user and session routes
//!   (`users.rs`), with the session header a front end forwards resolved and its role's limits
//!   applied in `session.rs`.
//! - [`daemon`]: the running service: runner (scheduler decisions applied), the bank's host
//!   (which SIM each port carries, what its modem's events mean), inbound and status reports
//!   into the store, the API backend (submission's group commit in `submit.rs`, one function
//!   per admin operation in `admin.rs`, users and sessions with argon2id in `users.rs`, the
//!   console's reads in `console.rs`), the carrier gateways' sending and events
//!   (`gateways.rs`) and which channel a message takes (`channels.rs`), systemd notification.
//! - [`config`]: the daemon's TOML configuration, every key with a default, and its own parsing
//!   helpers (durations, group names); `api` reads `config`, never the reverse.
//! - [`web`]: `smsgate web`, the network front end in its own process: the network API under
//!   `/api/v1/` (API keys checked by the daemon, per-account rate, OpenAPI document) over TLS,
//!   forwarding to the daemon's socket API as a front end (`frontends`); no store, no devices;
//!   and the customer console (`web/console/`: HTML pages, sessions and CSRF, calling the
//!   daemon as the logged-in user).
//! - [`cli`]: the clap command tree; each command is a thin client of the modules above.
//!
//! - [`diag`]: `smsgate diag`, the technician's probe of serial ports (baud, identity, SIM,
//!   signal, registration, who holds a port, a test SMS) with a verdict and hint per port.
//! - [`sim`]: the virtual modem bank on pseudo-terminals (the modem's side, sharing nothing with
//!   `at`/`modem`): dialects, latency, faults, inbound SMS and status reports, an event log.
//!   One modem's engine is `sim/modem/`: line plumbing, timers, command-line parsing, storage,
//!   submit checking, and the AT commands in groups under `commands/`.
//!
//! The rule throughout: protocol code is sans-I/O, I/O lives at the edges, and every file opens
//! with what it owns and what must always hold.
//!
//! ## Layering
//! The list below is the source of the crate's layering: `tests/layering.rs` reads it from this
//! file and fails when a module references (`crate::x`, or `super::` out of the module) one its
//! line does not name, when a module of this file has no line, when a line names a module that
//! is not on an earlier line, or when modules reference each other in a loop. Lowest first; a
//! module may use only the modules on its line, all of which sit above it. A new module gets a
//! line here when it is added; a new dependency is a change to this list, made on purpose.
//!
//! ```text
//! # module: the modules it may use
//! ids:
//! number:
//! pdu:
//! cmpp:
//! audit:
//! at: number
//! modem: at number pdu
//! bank: modem
//! policy: number
//! scheduler: ids at number
//! store: ids audit number policy scheduler
//! config: bank modem policy
//! api: config number
//! diag: at bank modem number pdu
//! gateway: cmpp modem number pdu
//! sim: cmpp pdu
//! daemon: ids api at audit bank config gateway modem number pdu policy scheduler store
//! web: api config
//! cli: api at audit cmpp config daemon diag number pdu sim store web
//! ```

pub mod api;
pub mod at;
pub mod audit;
pub mod bank;
pub mod cli;
pub mod cmpp;
pub mod config;
pub mod daemon;
pub mod diag;
pub mod gateway;
pub mod ids;
pub mod modem;
pub mod number;
pub mod pdu;
pub mod policy;
pub mod scheduler;
pub mod sim;
pub mod store;
pub mod web;
