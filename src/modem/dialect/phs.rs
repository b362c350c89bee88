//! PHS and CDMA-era modules (Huawei EC1xx/MC323-class CDMA modules, PHS modules for 0755-style
//! area-code numbers): text mode with Unicode content (`AT^HSMSSS=0,0,6,0`), send with
//! `AT^HCMGS="<number>"` + UCS2 bytes + 00 1A and an outcome URC (`^HCMGSS`/`^HCMGSF`), as
//! public drivers for the MC323 and MC703 do; received texts read with `AT^HCMGR=<index>` after
//! `+CMTI` (and at start-up), or routed directly as `^HCMT`; destinations in national form
//! (type 0x81); no +CMMS; reject a bare AT, never echo, cannot chain commands.

use super::{Dialect, Faults};
use crate::at::{IccidCommand, ReadCommand, SendCommand};

pub const PHS: Dialect = Dialect {
    name: "phs",
    manufacturers: &["phs", "utstarcom", "huawei"],
    models: &["phs", "cdma", "ec1"],
    init: &["AT^HSMSSS=0,0,6,0"],
    message_format: 1,
    cnmi: [2, 1, 0, 2, 0],
    storage: "ME",
    iccid: IccidCommand::Crsm,
    ignore_urcs: &[
        "^RSSILVL",
        "^HRSSILVL",
        "^MODE",
        "^SIMST",
        "^SRVST",
        "^DSDORMANT",
        "^HDRRSSI",
    ],
    read: ReadCommand::Hcmgr,
    send: SendCommand::Hcmgs,
    reset: "AT+CFUN=1,1",
    faults: Faults {
        rejects_bare_at: true,
        never_echoes: true,
        needs_cnma: false,
        drops_reply_with_smsc: false,
        no_cmms: true,
        national_address: true,
    },
};
