//! Huawei GSM/UMTS sticks (E1550, E173, E303, E3372 in serial mode): ^RSSI/^MODE/^BOOT
//! URC floods (silenced with AT^CURC=0 where firmware allows, ignored otherwise), ICCID by
//! AT^ICCID? (nibble-swapped), reset by AT^RESET.

use super::{Dialect, Faults};
use crate::at::{IccidCommand, ReadCommand, SendCommand};

pub const HUAWEI: Dialect = Dialect {
    name: "huawei",
    manufacturers: &["huawei"],
    models: &[],
    init: &["AT^CURC=0"],
    message_format: 0,
    cnmi: [2, 1, 0, 2, 0],
    storage: "SM",
    iccid: IccidCommand::HuaweiIccid,
    ignore_urcs: &[
        "^RSSI",
        "^HCSQ",
        "^MODE",
        "^BOOT",
        "^DSFLOWRPT",
        "^SRVST",
        "^SIMST",
        "^RSSILVL",
        "^HRSSILVL",
        "^CEND",
        "^ORIG",
        "^CONF",
        "^CONN",
        "^STIN",
        "^NWTIME",
        "^SYSSTART",
    ],
    read: ReadCommand::Cmgr,
    send: SendCommand::Cmgs,
    reset: "AT^RESET",
    faults: Faults {
        rejects_bare_at: false,
        never_echoes: false,
        needs_cnma: false,
        drops_reply_with_smsc: false,
        no_cmms: false,
        national_address: false,
    },
};
