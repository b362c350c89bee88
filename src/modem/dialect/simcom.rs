//! SIMCom modules (SIM800/SIM900, SIM7600): ICCID by AT+CCID; boot chatter ("Call Ready",
//! "SMS Ready", *PSUTTZ time zone URCs) to ignore.

use super::{Dialect, Faults};
use crate::at::{IccidCommand, ReadCommand, SendCommand};

pub const SIMCOM: Dialect = Dialect {
    name: "simcom",
    manufacturers: &["simcom"],
    models: &[],
    init: &[],
    message_format: 0,
    cnmi: [2, 1, 0, 1, 0],
    storage: "SM",
    iccid: IccidCommand::Ccid,
    ignore_urcs: &[
        "CALL READY",
        "SMS READY",
        "*PSUTTZ",
        "DST",
        "+CIEV",
        "RDY",
        "+CFUN",
        "+CPIN",
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
