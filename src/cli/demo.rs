//! `smsgate demo`: the first thing a new user runs. Starts a virtual modem bank (four modems of
//! different vendor dialects, realistic send latency and delivery reports) and the real daemon in
//! a temporary directory, sends a handful of messages through the real Unix-socket API (Chinese,
//! a long concatenated one, several carriers, and one from a 106 number through a virtual
//! carrier gateway over CMPP), follows them to delivered, shows a reply arriving, prints a
//! summary and exits 0 — or 1 if any message did not reach `delivered` in time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

use crate::api::client::ApiClient;
use crate::api::types::{InboxQuery, MessageId, MessageState, MessageView, SendRequest};
use crate::config::{AccountConfig, Config, GatewayEntry, SenderKind};
use crate::sim::{Bank, Control, DialectChoice, IsmgConfig, SimConfig};

/// The demo's 106 message: (recipient, what it shows, text).
const MESSAGE_106: (&str, &str, &str) = (
    "13812345678",
    "106 number via CMPP gateway",
    "【示例银行】您尾号 8812 的账户今日入账 1,250.00 元。",
);
/// The demo gateway's SP id and shared secret (the virtual ISMG checks them).
const DEMO_SP_ID: &str = "901234";
const DEMO_SECRET: &str = "demo-secret";

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many virtual modems.
    #[arg(long, default_value_t = 4)]
    pub modems: usize,
    /// Network time of one AT+CMGS on the virtual modems, e.g. 800ms or 0.
    #[arg(long, default_value = "800ms", value_parser = parse_ms)]
    pub latency: Duration,
    /// Keep the temporary directory (database, events.jsonl) and print its path.
    #[arg(long)]
    pub keep: bool,
    /// Give up waiting for delivery after this long.
    #[arg(long, default_value = "60s", value_parser = parse_ms)]
    pub timeout: Duration,
}

fn parse_ms(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    crate::api::types::parse_duration(s)
        .map(|d| d.unsigned_abs())
        .or_else(|_| {
            s.strip_suffix("ms")
                .and_then(|n| n.parse::<u64>().ok())
                .map(Duration::from_millis)
                .ok_or_else(|| format!("not a duration: {s:?} (e.g. 800ms, 2s)"))
        })
}

/// The demo's messages: (recipient as a customer would type it, what it shows, text).
const MESSAGES: &[(&str, &str, &str)] = &[
    (
        "+86 139 1234 5678",
        "China Mobile, Chinese (UCS2)",
        "【示例科技】您的验证码是 428913，5分钟内有效。如非本人操作请忽略。",
    ),
    (
        "13012345678",
        "China Unicom, long (concatenated)",
        "【示例商城】尊敬的会员您好：您订购的商品已于今日发出，快递单号 SF1234567890，预计两天内送达。\
         收货时请当面检查外包装是否完好，如有破损请拒收并联系客服。本店双十二活动将于十二月十二日零点开始，\
         全场满三百减五十，会员额外享受九五折优惠，欢迎届时选购。回T退订",
    ),
    (
        "18912345678",
        "China Telecom, GSM 7-bit",
        "Your parcel is ready for pick-up at locker 12, code 5531.",
    ),
    (
        "0086 192 1234 5678",
        "China Broadnet",
        "【示例物业】明天上午九点至十一点停水检修，请提前储水。",
    ),
    (
        "15512345678",
        "China Unicom, emoji (UCS2 surrogates)",
        "【示例咖啡】新品上市 ☕️ 第二杯半价，本周有效 🎉",
    ),
];

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.modems == 0 {
        bail!(super::BadInput("--modems must be at least 1".into()));
    }
    let dir = std::env::temp_dir().join(format!(
        "smsgate-demo-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(demo(&args, dir.clone()));
    if args.keep {
        println!("\nkept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn demo(args: &DemoArgs, dir: PathBuf) -> anyhow::Result<()> {
    let t0 = Instant::now();
    println!(
        "smsgate demo: a virtual modem bank and the daemon in {}",
        dir.display()
    );

    let mut sim = SimConfig::new(args.modems, dir.join("modems"));
    sim.dialect = DialectChoice::Mixed;
    sim.latency = args.latency;
    sim.report_delay = Duration::from_millis(1500);
    sim.seed = Some(2026);
    sim.control_socket = false;
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    sim.cmpp = Some(IsmgConfig::new(listen, DEMO_SP_ID, DEMO_SECRET.as_bytes()));
    let bank = Bank::start(sim)
        .await
        .context("cannot start the virtual modem bank")?;

    let uid = nix::unistd::getuid().as_raw();
    let mut config = Config {
        socket: dir.join("api.sock"),
        database: dir.join("smsgate.db"),
        ..Config::default()
    };
    config.modems.ports = vec![format!("{}/modem*", dir.join("modems").display())];
    config.quota.min_interval = jiff::SignedDuration::ZERO;
    config.admin_group = "root".into();
    // The virtual carrier gateway for the 106 message; its secret file as an operator keeps it.
    let secret_file = dir.join("cmcc.secret");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&secret_file)
            .and_then(|mut f| f.write_all(DEMO_SECRET.as_bytes()))
            .context("cannot write the demo gateway's secret file")?;
    }
    let cmpp = bank
        .cmpp_addr()
        .context("the virtual carrier gateway did not start")?;
    config.gateways = vec![GatewayEntry {
        name: "cmcc".into(),
        address: cmpp.to_string(),
        sp_id: DEMO_SP_ID.into(),
        secret_file,
        src_id: "1069012345".into(),
        service_id: "DEMO".into(),
        ..GatewayEntry::default()
    }];
    config.accounts = vec![AccountConfig {
        name: "demo".into(),
        uids: vec![uid],
        groups: Vec::new(),
        // The demo shows sending, not buying credit.
        unmetered: true,
        senders: vec![SenderKind::Mobile, SenderKind::Service106],
        gateway: Some("cmcc".into()),
        extension: "88".into(),
        ..AccountConfig::default()
    }];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(crate::daemon::run(
        config.clone(),
        None,
        async move {
            let _ = stop_rx.await;
        },
        None,
    ));

    let client = ApiClient::new(&config.socket);
    let outcome = drive(args, &client, &bank, t0).await;

    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(20), daemon).await {
        Ok(Ok(Err(e))) => eprintln!("smsgate: daemon: {e}"),
        Err(_) => eprintln!("smsgate: daemon did not stop within 20 s"),
        _ => {}
    }
    bank.shutdown().await;
    outcome
}

async fn drive(
    args: &DemoArgs,
    client: &ApiClient,
    bank: &Bank,
    t0: Instant,
) -> anyhow::Result<()> {
    // 1. Wait for the modems to be found, initialised and registered.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(h) = client.health().await {
            if h.modems_ready as usize >= args.modems {
                break;
            }
        }
        if Instant::now() > deadline {
            let ready = client.health().await.map(|h| h.modems_ready).unwrap_or(0);
            bail!(
                "only {ready} of {} modems became ready in 30 s",
                args.modems
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let modems = client.modems().await?;
    println!(
        "\n{} modems ready after {:.1}s:",
        modems.len(),
        t0.elapsed().as_secs_f64()
    );
    for m in &modems {
        println!(
            "  {:<10} ICCID {}  IMSI {} ({})  {} dBm",
            short_port(&m.port),
            m.iccid.as_deref().unwrap_or("-"),
            m.imsi.as_deref().unwrap_or("-"),
            m.imsi
                .as_deref()
                .map(|i| crate::number::carrier_of_imsi(i).as_str())
                .unwrap_or("-"),
            m.signal_dbm.map(|d| d.to_string()).unwrap_or("-".into()),
        );
    }

    // 2. Send.
    println!(
        "\nsending {} messages through the API socket:",
        MESSAGES.len()
    );
    let mut sent: Vec<(MessageId, &str, &str, u32)> = Vec::new();
    let mut gateway_id = None;
    let all = MESSAGES
        .iter()
        .map(|m| (m, None))
        .chain([(&MESSAGE_106, Some(SenderKind::Service106))]);
    for ((to, what, text), sender) in all {
        let resp = client
            .send(&SendRequest {
                to: vec![(*to).to_string()],
                text: (*text).to_string(),
                report: true,
                validity: None,
                not_before: None,
                priority: Default::default(),
                account: None,
                sender,
            })
            .await
            .with_context(|| format!("sending to {to}"))?;
        let Some(id) = resp.ids.first() else {
            bail!("the daemon refused {to}: {:?}", resp.refused);
        };
        let shown = crate::number::parse(to)
            .map(|n| n.masked())
            .unwrap_or_else(|_| crate::number::mask(to));
        println!(
            "  #{:<3} {:<16} {:<38} {} part(s)",
            id.0, shown, what, resp.parts
        );
        if sender.is_some() {
            gateway_id = Some(*id);
        }
        sent.push((*id, to, what, resp.parts));
    }

    // 3. Follow them.
    println!(
        "\nfollowing them (AT+CMGS on the modems, CMPP SUBMIT to the gateway, then delivery reports):"
    );
    let started = Instant::now();
    let mut last: BTreeMap<u64, MessageState> = BTreeMap::new();
    let mut views: BTreeMap<u64, MessageView> = BTreeMap::new();
    let mut delivered_after: BTreeMap<u64, Duration> = BTreeMap::new();
    loop {
        for (id, _, _, _) in &sent {
            let v = client.status(*id, None).await?;
            if last.get(&id.0) != Some(&v.state) {
                let sims: Vec<String> = v
                    .parts
                    .iter()
                    .filter_map(|p| p.sim.clone())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                println!(
                    "  {:>5.1}s  #{:<3} {:<10} {}",
                    started.elapsed().as_secs_f64(),
                    id.0,
                    v.state.as_str(),
                    if gateway_id == Some(*id) && v.state != MessageState::Queued {
                        "via gateway cmcc, Src_Id 106901234588".to_string()
                    } else if sims.is_empty() {
                        String::new()
                    } else {
                        format!("on SIM {}", sims.join(", "))
                    }
                );
                last.insert(id.0, v.state);
                if v.state == MessageState::Delivered {
                    delivered_after.insert(id.0, started.elapsed());
                }
            }
            views.insert(id.0, v);
        }
        let done = views.values().all(|v| {
            matches!(
                v.state,
                MessageState::Delivered
                    | MessageState::Failed
                    | MessageState::Expired
                    | MessageState::Cancelled
                    | MessageState::Rejected
            )
        });
        if done || started.elapsed() > args.timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 4. A reply: the first recipient answers "TD" (unsubscribe).
    let (first_id, first_to, _, _) = sent[0];
    let reply_from = views
        .get(&first_id.0)
        .map(|v| v.to.clone())
        .unwrap_or_else(|| first_to.to_string());
    bank.control(Control::Inject {
        modem: 0,
        from: reply_from.clone(),
        text: "TD".into(),
    })
    .await
    .context("injecting a reply")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reply = None;
    while Instant::now() < deadline && reply.is_none() {
        let inbox = client.inbox(&InboxQuery::default()).await?;
        reply = inbox.messages.into_iter().find(|m| m.from == reply_from);
        if reply.is_none() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    match &reply {
        Some(m) => println!(
            "\nreply received: {} wrote {:?} (inbox #{})",
            crate::number::mask(&m.from),
            m.text,
            m.id
        ),
        None => println!("\nno reply reached the inbox within 10 s"),
    }

    // 5. Summary.
    println!("\nsummary:");
    println!(
        "  {:<4} {:<16} {:<38} {:>5}  {:<10} {:>9}",
        "id", "to", "what", "parts", "state", "delivered"
    );
    let mut all_delivered = true;
    for (id, _, what, parts) in &sent {
        let v = &views[&id.0];
        all_delivered &= v.state == MessageState::Delivered;
        println!(
            "  {:<4} {:<16} {:<38} {:>5}  {:<10} {:>9}",
            id.0,
            crate::number::mask(&v.to),
            what,
            parts,
            v.state.as_str(),
            delivered_after
                .get(&id.0)
                .map(|d| format!("{:.1}s", d.as_secs_f64()))
                .unwrap_or_else(|| "-".into())
        );
    }
    let total_parts: u32 = sent.iter().map(|s| s.3).sum();
    println!(
        "\n{} messages, {} SMS parts, over {} modems and one carrier gateway in {:.1}s.",
        sent.len(),
        total_parts,
        args.modems,
        t0.elapsed().as_secs_f64()
    );
    if !all_delivered || reply.is_none() {
        bail!("the demo did not complete: see the states above");
    }
    println!(
        "Next: `smsgate sim` and `smsgate daemon --config smsgate.example.toml` (see README)."
    );
    Ok(())
}

fn short_port(p: &str) -> String {
    std::path::Path::new(p)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.to_string())
}
