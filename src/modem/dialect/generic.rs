//! Plain 3GPP TS 27.005/27.007: the dialect of any modem we do not recognise.

use super::{Dialect, Faults};
use crate::at::{IccidCommand, ReadCommand, SendCommand};

pub const GENERIC: Dialect = Dialect {
    name: "generic",
    manufacturers: &[],
    models: &[],
    init: &[],
    // Stored inbound (+CMTI), status reports routed directly (+CDS).
    message_format: 0,
    cnmi: [2, 1, 0, 1, 0],
    storage: "SM",
    // EF_ICCID through restricted SIM access works on every 27.007 modem.
    iccid: IccidCommand::Crsm,
    ignore_urcs: &[],
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
