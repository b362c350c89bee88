//! Device errors reported by the modem itself: `+CMS ERROR` (3GPP TS 27.005 §3.2.5),
//! `+CME ERROR` (TS 27.007 §9.2), a bare `ERROR`, and other final failures such as
//! `NO CARRIER` or `COMMAND NOT SUPPORT`. Unknown codes are kept (`Other(u16)`), verbose
//! texts (+CMEE=2) map to the same codes as the numeric forms, and every error has a
//! [`ErrorClass`] the scheduler uses. These are *device* errors; a broken link is
//! `LinkError` in the session layer and never mixes with these.

use std::fmt;

/// How the scheduler should treat a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The message itself is at fault (bad PDU, rejected destination): do not retry it.
    PermanentForMessage,
    /// This modem or the network is momentarily unable: retry later or on another modem.
    TransientForModem,
    /// The SIM is missing, locked or unregistered: take this SIM out of rotation.
    SimOrRegistration,
    /// The answer to a send does not say whether the network took the part (network timeout,
    /// unknown error after the PDU left): the part may have reached the SMSC, so it is treated
    /// like an unconfirmed send (`unknown`), never retried by itself unless the operator chose to.
    Ambiguous,
}

macro_rules! coded_error {
    ($(#[$m:meta])* $name:ident { $($var:ident = $code:literal, $text:literal, $class:ident;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($var,)*
            /// A code this table does not name; kept as received.
            Other(u16),
        }
        impl $name {
            /// The error for a numeric code (never fails: unknown codes become `Other`).
            pub fn from_code(code: u16) -> Self {
                match code { $($code => Self::$var,)* c => Self::Other(c) }
            }
            /// The numeric code as the modem sends it with +CMEE=1.
            pub fn code(self) -> u16 {
                match self { $(Self::$var => $code,)* Self::Other(c) => c }
            }
            /// The verbose text of the specification (+CMEE=2), if this code has one.
            pub fn text(self) -> Option<&'static str> {
                match self { $(Self::$var => Some($text),)* Self::Other(_) => None }
            }
            /// Maps a verbose text (+CMEE=2) back to its code; case and spacing are forgiven.
            pub fn from_text(text: &str) -> Option<Self> {
                let want = normalise(text);
                $(if normalise($text) == want { return Some(Self::$var); })*
                None
            }
            fn table_class(self) -> Option<ErrorClass> {
                match self { $(Self::$var => Some(ErrorClass::$class),)* Self::Other(_) => None }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.text() {
                    Some(t) => write!(f, "{} ({})", self.code(), t),
                    None => write!(f, "{}", self.code()),
                }
            }
        }
    };
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

coded_error! {
    /// `+CMS ERROR` codes: 0-127 RP causes (TS 24.011 E.2), 128-255 TP-FCS (TS 23.040
    /// 9.2.3.22), 300-500 TS 27.005 §3.2.5, 512+ vendor specific.
    CmsError {
        UnassignedNumber = 1, "Unassigned (unallocated) number", PermanentForMessage;
        OperatorBarring = 8, "Operator determined barring", PermanentForMessage;
        CallBarred = 10, "Call barred", PermanentForMessage;
        ShortMessageTransferRejected = 21, "Short message transfer rejected", PermanentForMessage;
        DestinationOutOfService = 27, "Destination out of service", TransientForModem;
        UnidentifiedSubscriber = 28, "Unidentified subscriber", PermanentForMessage;
        FacilityRejected = 29, "Facility rejected", PermanentForMessage;
        UnknownSubscriber = 30, "Unknown subscriber", PermanentForMessage;
        NetworkOutOfOrder = 38, "Network out of order", TransientForModem;
        TemporaryFailure = 41, "Temporary failure", TransientForModem;
        Congestion = 42, "Congestion", TransientForModem;
        ResourcesUnavailable = 47, "Resources unavailable, unspecified", TransientForModem;
        FacilityNotSubscribed = 50, "Requested facility not subscribed", SimOrRegistration;
        FacilityNotImplemented = 69, "Requested facility not implemented", PermanentForMessage;
        InvalidReference = 81, "Invalid short message transfer reference value", TransientForModem;
        InvalidMessage = 95, "Invalid message, unspecified", PermanentForMessage;
        InvalidMandatoryInformation = 96, "Invalid mandatory information", PermanentForMessage;
        MessageTypeNonExistent = 97, "Message type non-existent or not implemented", PermanentForMessage;
        MessageNotCompatible = 98, "Message not compatible with short message protocol state", TransientForModem;
        InformationElementNonExistent = 99, "Information element non-existent or not implemented", PermanentForMessage;
        ProtocolError = 111, "Protocol error, unspecified", TransientForModem;
        Interworking = 127, "Interworking, unspecified", TransientForModem;
        TelematicNotSupported = 128, "Telematic interworking not supported", PermanentForMessage;
        Type0NotSupported = 129, "Short message Type 0 not supported", PermanentForMessage;
        CannotReplace = 130, "Cannot replace short message", PermanentForMessage;
        TpPidError = 143, "Unspecified TP-PID error", PermanentForMessage;
        DcsNotSupported = 144, "Data coding scheme (alphabet) not supported", PermanentForMessage;
        MessageClassNotSupported = 145, "Message class not supported", PermanentForMessage;
        TpDcsError = 159, "Unspecified TP-DCS error", PermanentForMessage;
        CommandCannotBeActioned = 160, "Command cannot be actioned", PermanentForMessage;
        CommandUnsupported = 161, "Command unsupported", PermanentForMessage;
        TpCommandError = 175, "Unspecified TP-Command error", PermanentForMessage;
        TpduNotSupported = 176, "TPDU not supported", PermanentForMessage;
        ScBusy = 192, "SC busy", TransientForModem;
        NoScSubscription = 193, "No SC subscription", SimOrRegistration;
        ScSystemFailure = 194, "SC system failure", TransientForModem;
        InvalidSmeAddress = 195, "Invalid SME address", PermanentForMessage;
        DestinationSmeBarred = 196, "Destination SME barred", PermanentForMessage;
        SmRejectedDuplicate = 197, "SM Rejected-Duplicate SM", PermanentForMessage;
        VpfNotSupported = 198, "TP-VPF not supported", PermanentForMessage;
        VpNotSupported = 199, "TP-VP not supported", PermanentForMessage;
        SimSmsStorageFull = 208, "D0 SIM SMS storage full", TransientForModem;
        NoSmsStorageInSim = 209, "No SMS storage capability in SIM", SimOrRegistration;
        ErrorInMs = 210, "Error in MS", TransientForModem;
        MemoryCapacityExceeded = 211, "Memory Capacity Exceeded", TransientForModem;
        SimToolkitBusy = 212, "SIM Application Toolkit Busy", TransientForModem;
        SimDataDownloadError = 213, "SIM data download error", TransientForModem;
        UnspecifiedTpFcs = 255, "Unspecified error cause", TransientForModem;
        MeFailure = 300, "ME failure", TransientForModem;
        SmsServiceReserved = 301, "SMS service of ME reserved", TransientForModem;
        OperationNotAllowed = 302, "operation not allowed", TransientForModem;
        OperationNotSupported = 303, "operation not supported", TransientForModem;
        InvalidPduParameter = 304, "invalid PDU mode parameter", PermanentForMessage;
        InvalidTextParameter = 305, "invalid text mode parameter", PermanentForMessage;
        SimNotInserted = 310, "SIM not inserted", SimOrRegistration;
        SimPinRequired = 311, "SIM PIN required", SimOrRegistration;
        PhSimPinRequired = 312, "PH-SIM PIN required", SimOrRegistration;
        SimFailure = 313, "SIM failure", SimOrRegistration;
        SimBusy = 314, "SIM busy", TransientForModem;
        SimWrong = 315, "SIM wrong", SimOrRegistration;
        SimPukRequired = 316, "SIM PUK required", SimOrRegistration;
        SimPin2Required = 317, "SIM PIN2 required", SimOrRegistration;
        SimPuk2Required = 318, "SIM PUK2 required", SimOrRegistration;
        MemoryFailure = 320, "memory failure", TransientForModem;
        InvalidMemoryIndex = 321, "invalid memory index", TransientForModem;
        MemoryFull = 322, "memory full", TransientForModem;
        SmscAddressUnknown = 330, "SMSC address unknown", SimOrRegistration;
        NoNetworkService = 331, "no network service", TransientForModem;
        NetworkTimeout = 332, "network timeout", Ambiguous;
        NoCnmaExpected = 340, "no +CNMA acknowledgement expected", TransientForModem;
        Unknown = 500, "unknown error", Ambiguous;
    }
}

impl CmsError {
    /// How the scheduler treats this error. Unlisted RP causes (0-127) and TP-FCS values
    /// (128-255) are judged by their range; vendor codes (512+) count as transient.
    pub fn class(self) -> ErrorClass {
        if let Some(c) = self.table_class() {
            return c;
        }
        match self.code() {
            // Unlisted RP causes: most are network-side conditions.
            0..=127 => ErrorClass::TransientForModem,
            // TP-FCS 0x80-0xBF describe the message (PID, DCS, command): permanent.
            128..=191 => ErrorClass::PermanentForMessage,
            192..=255 => ErrorClass::TransientForModem,
            310..=319 => ErrorClass::SimOrRegistration,
            _ => ErrorClass::TransientForModem,
        }
    }
}

coded_error! {
    /// `+CME ERROR` codes (3GPP TS 27.007 §9.2.1).
    CmeError {
        PhoneFailure = 0, "phone failure", TransientForModem;
        NoConnection = 1, "no connection to phone", TransientForModem;
        LinkReserved = 2, "phone-adaptor link reserved", TransientForModem;
        OperationNotAllowed = 3, "operation not allowed", TransientForModem;
        OperationNotSupported = 4, "operation not supported", TransientForModem;
        PhSimPinRequired = 5, "PH-SIM PIN required", SimOrRegistration;
        SimNotInserted = 10, "SIM not inserted", SimOrRegistration;
        SimPinRequired = 11, "SIM PIN required", SimOrRegistration;
        SimPukRequired = 12, "SIM PUK required", SimOrRegistration;
        SimFailure = 13, "SIM failure", SimOrRegistration;
        SimBusy = 14, "SIM busy", TransientForModem;
        SimWrong = 15, "SIM wrong", SimOrRegistration;
        IncorrectPassword = 16, "incorrect password", SimOrRegistration;
        SimPin2Required = 17, "SIM PIN2 required", SimOrRegistration;
        SimPuk2Required = 18, "SIM PUK2 required", SimOrRegistration;
        MemoryFull = 20, "memory full", TransientForModem;
        InvalidIndex = 21, "invalid index", TransientForModem;
        NotFound = 22, "not found", TransientForModem;
        MemoryFailure = 23, "memory failure", TransientForModem;
        TextTooLong = 24, "text string too long", PermanentForMessage;
        InvalidCharactersInText = 25, "invalid characters in text string", PermanentForMessage;
        DialStringTooLong = 26, "dial string too long", PermanentForMessage;
        InvalidCharactersInDialString = 27, "invalid characters in dial string", PermanentForMessage;
        NoNetworkService = 30, "no network service", SimOrRegistration;
        NetworkTimeout = 31, "network timeout", Ambiguous;
        EmergencyCallsOnly = 32, "network not allowed - emergency calls only", SimOrRegistration;
        Unknown = 100, "unknown", Ambiguous;
    }
}

impl CmeError {
    /// How the scheduler treats this error; unknown codes count as transient.
    pub fn class(self) -> ErrorClass {
        self.table_class().unwrap_or(ErrorClass::TransientForModem)
    }
}

/// A final result that is not `OK`: the modem answered, and said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A bare `ERROR` (before +CMEE, or a modem that gives no detail).
    #[error("ERROR")]
    Error,
    #[error("+CMS ERROR: {0}")]
    Cms(CmsError),
    #[error("+CME ERROR: {0}")]
    Cme(CmeError),
    /// A verbose `+CMS/+CME ERROR` whose text no table knows; kept verbatim.
    #[error("{0}")]
    UnknownText(String),
    /// Other final failures: NO CARRIER, BUSY, NO ANSWER, NO DIALTONE, COMMAND NOT SUPPORT...
    #[error("{0}")]
    Final(String),
    /// `^HCMGSF: <cause>`: a CDMA/PHS module reports the send failed (cause as given).
    #[error("^HCMGSF: {0}")]
    SendFailed(u16),
    /// The part cannot be expressed with this modem's send command (e.g. an alphanumeric
    /// destination or 8-bit data through a text-only ^HCMGS module).
    #[error("cannot send on this modem: {0}")]
    Unsupported(String),
    /// The modem answered `OK` but the reply could not be understood.
    #[error("unparseable reply: {0}")]
    BadReply(String),
}

impl DeviceError {
    /// How the scheduler treats this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            DeviceError::Cms(e) => e.class(),
            DeviceError::Cme(e) => e.class(),
            DeviceError::Unsupported(_) => ErrorClass::PermanentForMessage,
            _ => ErrorClass::TransientForModem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknowns_are_kept() {
        for code in 0..1200u16 {
            assert_eq!(CmsError::from_code(code).code(), code);
            assert_eq!(CmeError::from_code(code).code(), code);
        }
        assert_eq!(CmsError::from_code(777), CmsError::Other(777));
    }

    #[test]
    fn verbose_texts_map_to_codes() {
        // Texts as printed by modems with AT+CMEE=2 (TS 27.007 §9.2.1, TS 27.005 §3.2.5).
        assert_eq!(
            CmeError::from_text("SIM PIN required"),
            Some(CmeError::SimPinRequired)
        );
        assert_eq!(
            CmeError::from_text("SIM not inserted"),
            Some(CmeError::SimNotInserted)
        );
        assert_eq!(
            CmsError::from_text("invalid PDU mode parameter"),
            Some(CmsError::InvalidPduParameter)
        );
        assert_eq!(
            CmsError::from_text("Network Timeout"),
            Some(CmsError::NetworkTimeout)
        );
        assert_eq!(CmsError::from_text("no such thing"), None);
    }

    #[test]
    fn classification_follows_the_domain_notes() {
        use ErrorClass::*;
        assert_eq!(CmsError::from_code(21).class(), PermanentForMessage);
        assert_eq!(CmsError::from_code(304).class(), PermanentForMessage);
        assert_eq!(CmsError::from_code(305).class(), PermanentForMessage);
        assert_eq!(CmsError::from_code(38).class(), TransientForModem);
        assert_eq!(CmsError::from_code(42).class(), TransientForModem);
        assert_eq!(CmsError::from_code(331).class(), TransientForModem);
        // Issue 8: network timeout and unknown error may come after the part reached the SMSC.
        assert_eq!(CmsError::from_code(332).class(), Ambiguous);
        assert_eq!(CmsError::from_code(500).class(), Ambiguous);
        assert_eq!(CmeError::from_code(31).class(), Ambiguous);
        assert_eq!(CmsError::from_code(310).class(), SimOrRegistration);
        assert_eq!(CmsError::from_code(319).class(), SimOrRegistration);
        assert_eq!(CmsError::from_code(600).class(), TransientForModem);
        assert_eq!(CmeError::from_code(11).class(), SimOrRegistration);
        assert_eq!(CmeError::from_code(30).class(), SimOrRegistration);
        assert_eq!(CmeError::from_code(999).class(), TransientForModem);
    }
}
