//! PHS and CDMA-era modules (Huawei EC1xx CDMA family and PHS modules for 0755-style area-code
//! numbers): send with AT^HCMGS, national type of address (0x81), no +CMMS, reject a bare AT,
//! never echo, cannot chain commands, and drop the reply after ">" when the PDU carries an SMSC.
//! Assumption (no hardware to check): ^HCMGS follows the +CMGS PDU flow (length, prompt,
//! hex + Ctrl-Z, `^HCMGS: <mr>`).

use super::{Dialect, Faults};
use crate::at::{IccidCommand, SendCommand};

pub const PHS: Dialect = Dialect {
    name: "phs",
    manufacturers: &["phs", "utstarcom", "huawei"],
    models: &["phs", "cdma", "ec1"],
    probe: "ATE0",
    init: &[],
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
    send: SendCommand::Hcmgs,
    reset: "AT+CFUN=1,1",
    faults: Faults {
        rejects_bare_at: true,
        never_echoes: true,
        no_chaining: true,
        needs_cnma: false,
        drops_reply_with_smsc: true,
        no_cmms: true,
        national_address: true,
    },
};
