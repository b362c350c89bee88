//! Wavecom / Sierra Fastrack: +WIND indications (switched off with AT+WIND=0), ICCID by
//! AT+CCID, reset by AT+CFUN=1.

use super::{Dialect, Faults};
use crate::at::{IccidCommand, ReadCommand, SendCommand};

pub const WAVECOM: Dialect = Dialect {
    name: "wavecom",
    manufacturers: &["wavecom"],
    models: &[],
    init: &["AT+WIND=0"],
    message_format: 0,
    cnmi: [2, 1, 0, 1, 0],
    storage: "SM",
    iccid: IccidCommand::Ccid,
    ignore_urcs: &["+WIND"],
    read: ReadCommand::Cmgr,
    send: SendCommand::Cmgs,
    reset: "AT+CFUN=1",
    faults: Faults {
        rejects_bare_at: false,
        never_echoes: false,
        needs_cnma: false,
        drops_reply_with_smsc: false,
        no_cmms: false,
        national_address: false,
    },
};
