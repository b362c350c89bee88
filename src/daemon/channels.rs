//! Which channel a message goes out on (issue 12): the modem bank (sender kinds "mobile" and
//! "phs") or a named carrier gateway ("106", Src_Id = the gateway's access number + the
//! account's extension), decided at acceptance from the account's `sender`, `senders`,
//! `gateway`, `extension` and `fallback` keys; and, for an MO that came through a gateway,
//! which account its Dest_Id's extension names.
//!
//! What must always hold: a request is refused (403, saying which kinds the account may use)
//! rather than sent from a kind of number the account may not use; an account the
//! configuration does not list (added at run time) sends from mobile numbers only; an MO's
//! account is the one whose extension is the longest prefix of the extension it was sent to
//! (an empty extension matches anything, last).

use std::collections::HashMap;

use crate::api::ApiError;
use crate::config::{AccountConfig, Config, SenderKind};
use crate::store::MessageChannel;

/// The accounts' channel settings and the gateways' access numbers, from the configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct Channels {
    accounts: HashMap<String, AccountConfig>,
    /// Gateway name -> its `src_id` (the 106 access number).
    gateways: HashMap<String, String>,
}

impl Channels {
    pub fn from_config(config: &Config) -> Channels {
        Channels {
            accounts: config
                .accounts
                .iter()
                .map(|a| (a.name.clone(), a.clone()))
                .collect(),
            gateways: config
                .gateways
                .iter()
                .map(|g| (g.name.clone(), g.src_id.clone()))
                .collect(),
        }
    }

    /// The channel of a message from `account` asking for `asked` (None: its default).
    pub fn resolve(
        &self,
        account: &str,
        asked: Option<SenderKind>,
    ) -> Result<MessageChannel, ApiError> {
        let fallback_account = AccountConfig::default();
        let a = self.accounts.get(account).unwrap_or(&fallback_account);
        let kind = asked.unwrap_or(a.sender);
        let allowed = a.allowed_senders();
        if !allowed.contains(&kind) {
            let list: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
            return Err(ApiError::Forbidden(format!(
                "account {account:?} may not send from a {kind} number (it may use: {})",
                list.join(", ")
            )));
        }
        if kind != SenderKind::Service106 {
            return Ok(MessageChannel {
                sender_kind: kind.as_str().into(),
                gateway: None,
                src_id: None,
                fallback: false,
            });
        }
        // The configuration check makes sure a 106 account has a known gateway.
        let gateway = a.gateway.clone().unwrap_or_default();
        let Some(access) = self.gateways.get(&gateway) else {
            return Err(ApiError::Forbidden(format!(
                "account {account:?} has no gateway for 106 numbers"
            )));
        };
        Ok(MessageChannel {
            sender_kind: kind.as_str().into(),
            src_id: Some(format!("{access}{}", a.extension)),
            gateway: Some(gateway),
            fallback: a.fallback,
        })
    }

    /// The account an MO through `gateway` is for, from the extension after the access
    /// number in its Dest_Id.
    pub fn account_for_extension(&self, gateway: &str, extension: Option<&str>) -> Option<String> {
        let extension = extension?;
        self.accounts
            .values()
            .filter(|a| a.gateway.as_deref() == Some(gateway))
            .filter(|a| extension.starts_with(a.extension.as_str()))
            .max_by_key(|a| (a.extension.len(), std::cmp::Reverse(a.name.clone())))
            .map(|a| a.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> Channels {
        let text = r#"
[[gateways]]
name = "cmcc"
address = "127.0.0.1:7890"
sp_id = "901234"
secret_file = "/x"
src_id = "1069012345"
[[accounts]]
name = "shop"
sender = "106"
senders = ["106", "mobile"]
gateway = "cmcc"
extension = "42"
[[accounts]]
name = "bank"
sender = "106"
gateway = "cmcc"
extension = "4"
fallback = true
[[accounts]]
name = "plain"
"#;
        Channels::from_config(&Config::from_toml(std::path::Path::new("t"), text).unwrap())
    }

    #[test]
    fn the_account_decides_the_channel() {
        let c = channels();
        let shop = c.resolve("shop", None).unwrap();
        assert_eq!(shop.gateway.as_deref(), Some("cmcc"));
        assert_eq!(shop.src_id.as_deref(), Some("106901234542"));
        assert!(!shop.fallback);
        assert_eq!(
            c.resolve("shop", Some(SenderKind::Mobile)).unwrap().gateway,
            None
        );
        assert!(c.resolve("bank", None).unwrap().fallback);
        let e = c.resolve("shop", Some(SenderKind::Phs)).unwrap_err();
        assert!(matches!(e, ApiError::Forbidden(_)), "{e}");
        assert!(e.to_string().contains("106, mobile"), "{e}");
        assert!(c.resolve("plain", Some(SenderKind::Service106)).is_err());
        // An account added at run time sends from mobile numbers only.
        assert_eq!(c.resolve("new", None).unwrap().sender_kind, "mobile");
        assert!(c.resolve("new", Some(SenderKind::Service106)).is_err());
    }

    #[test]
    fn an_mo_finds_the_account_of_the_longest_extension() {
        let c = channels();
        assert_eq!(
            c.account_for_extension("cmcc", Some("42")).as_deref(),
            Some("shop")
        );
        assert_eq!(
            c.account_for_extension("cmcc", Some("4217")).as_deref(),
            Some("shop")
        );
        assert_eq!(
            c.account_for_extension("cmcc", Some("43")).as_deref(),
            Some("bank")
        );
        assert_eq!(c.account_for_extension("cmcc", Some("9")), None);
        assert_eq!(c.account_for_extension("other", Some("42")), None);
        assert_eq!(c.account_for_extension("cmcc", None), None);
    }
}
