//! ZTE sticks (MF626, MF190...): +Z* URCs about the USIM and phonebook; ICCID through +CRSM
//! because AT+ZGETICCID is missing on older firmware; cannot chain commands.

use super::{Dialect, Faults};
use crate::at::{IccidCommand, ReadCommand, SendCommand};

pub const ZTE: Dialect = Dialect {
    name: "zte",
    manufacturers: &["zte"],
    models: &[],
    init: &[],
    message_format: 0,
    cnmi: [2, 1, 0, 2, 0],
    storage: "SM",
    iccid: IccidCommand::Crsm,
    ignore_urcs: &[
        "+ZUSIMR", "+ZPBIC", "+ZEND", "+ZSTR", "+ZDONR", "+ZPASR", "+ZCPI",
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
