//! Quectel modules (M35, UC15, EC20/EC25): ICCID by AT+QCCID; boot URCs (RDY, +QIND,
//! +CPIN: READY, SMS DONE) to ignore.

use super::{Dialect, Faults};
use crate::at::{IccidCommand, ReadCommand, SendCommand};

pub const QUECTEL: Dialect = Dialect {
    name: "quectel",
    manufacturers: &["quectel"],
    models: &[],
    init: &[],
    message_format: 0,
    cnmi: [2, 1, 0, 1, 0],
    storage: "SM",
    iccid: IccidCommand::Qccid,
    ignore_urcs: &[
        "+QIND", "RDY", "+CPIN", "+QUSIM", "SMS DONE", "PB DONE", "+CFUN", "+QCSQ",
    ],
    read: ReadCommand::Cmgr,
    send: SendCommand::Cmgs,
    reset: "AT+CFUN=1,1",
    faults: Faults {
        rejects_bare_at: false,
        never_echoes: false,
        needs_cnma: false,
        drops_reply_with_smsc: false,
        no_cmms: false,
        national_address: false,
    },
};
