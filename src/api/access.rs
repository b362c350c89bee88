//! Who may do what: the connecting process's peer credentials (SO_PEERCRED) become a [`Caller`]
//! through the configured uid/group -> account map. The decision is a pure function
//! ([`AccessMap::resolve`], [`act_for`]) so it is tested without changing uid; only
//! [`PeerCredentials::groups`] touches the system (the user and group databases).
//!
//! What must always hold: root (uid 0) and members of the admin group are admins; any other
//! caller acts only for the one account its uid (first) or one of its groups maps to; a caller
//! with neither gets [`ApiError::Forbidden`] naming its uid. Nothing here trusts a value the
//! client sent: the `account` a request names is checked by [`act_for`].

use super::{ApiError, Caller};
use crate::config::groups;

/// The credentials the kernel reports for the other end of a Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    pub uid: u32,
    /// Primary group of the process.
    pub gid: u32,
    pub pid: Option<i32>,
}

impl PeerCredentials {
    /// The process's groups as the group database sees its user: the primary gid plus the
    /// user's supplementary groups (getgrouplist). A uid with no passwd entry has only its gid.
    /// Blocking (NSS lookups): call from a blocking task.
    pub fn groups(&self) -> Vec<u32> {
        use nix::unistd::{getgrouplist, Gid, Uid, User};
        let mut gids = vec![self.gid];
        if let Ok(Some(user)) = User::from_uid(Uid::from_raw(self.uid)) {
            if let Ok(name) = std::ffi::CString::new(user.name) {
                if let Ok(list) = getgrouplist(&name, Gid::from_raw(self.gid)) {
                    gids.extend(list.into_iter().map(|g| g.as_raw()));
                }
            }
        }
        gids.sort_unstable();
        gids.dedup();
        gids
    }
}

/// One account's members, with group names already resolved to gids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAccess {
    pub name: String,
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

/// The uid/group -> account map and the admin group, resolved from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessMap {
    pub accounts: Vec<AccountAccess>,
    pub admin_gid: Option<u32>,
    /// Uids of front ends (`frontends`): they may act for an account they name, as that
    /// account, and verify API keys (see `extract::caller`).
    pub frontends: Vec<u32>,
}

impl AccessMap {
    /// Builds the map from the configuration, looking group names up in the group database.
    /// A name that does not resolve is an error (a typo would silently lock an account out);
    /// a missing admin group only disables group-based admin rights, with a warning, because a
    /// fresh install has not created it yet and root stays admin.
    pub fn from_config(config: &crate::config::Config) -> Result<AccessMap, String> {
        let mut accounts = Vec::with_capacity(config.accounts.len());
        for account in &config.accounts {
            accounts.push(AccountAccess {
                name: account.name.clone(),
                uids: account.uids.clone(),
                gids: groups::account_gids(account)?,
            });
        }
        let admin_gid = groups::admin_gid(config)?;
        Ok(AccessMap {
            accounts,
            admin_gid,
            frontends: config.frontends.clone(),
        })
    }

    /// The caller for a process with this uid and these groups.
    pub fn resolve(&self, uid: u32, gids: &[u32]) -> Result<Caller, ApiError> {
        let admin = uid == 0 || self.admin_gid.is_some_and(|g| gids.contains(&g));
        let account = self
            .accounts
            .iter()
            .find(|a| a.uids.contains(&uid))
            .or_else(|| {
                self.accounts
                    .iter()
                    .find(|a| a.gids.iter().any(|g| gids.contains(g)))
            })
            .map(|a| a.name.clone());
        if account.is_none() && !admin {
            return Err(ApiError::Forbidden(format!(
                "uid {uid} is not mapped to any smsgate account: add it to an [[accounts]] entry \
                 (uids or groups) in the smsgate configuration"
            )));
        }
        Ok(Caller {
            uid,
            account,
            admin,
            ..Caller::default()
        })
    }
}

/// The caller acting for `requested` (the request's `account` field or `?account=`): admins may
/// name any account, others only their own.
pub fn act_for(caller: Caller, requested: Option<&str>) -> Result<Caller, ApiError> {
    match requested {
        None => Ok(caller),
        Some("") => Err(ApiError::InvalidField("account: must not be empty".into())),
        Some(name) if caller.admin => Ok(Caller {
            account: Some(name.to_owned()),
            ..caller
        }),
        Some(name) if caller.account.as_deref() == Some(name) => Ok(caller),
        Some(name) => Err(ApiError::Forbidden(format!(
            "uid {} may not act for account {name:?}: only admins may name another account",
            caller.uid
        ))),
    }
}

/// A group name (or a plain number, taken as a gid) to its gid.
#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> AccessMap {
        AccessMap {
            accounts: vec![
                AccountAccess {
                    name: "shop".into(),
                    uids: vec![1001],
                    gids: vec![2001],
                },
                AccountAccess {
                    name: "clinic".into(),
                    uids: vec![1002],
                    gids: vec![2001, 2002],
                },
            ],
            admin_gid: Some(3000),
            frontends: vec![],
        }
    }

    #[test]
    fn from_config_resolves_group_names() {
        let mut config = crate::config::Config::default();
        config.accounts.push(crate::config::AccountConfig {
            name: "ops".into(),
            uids: vec![1234],
            groups: vec!["root".into(), "4321".into()],
            ..Default::default()
        });
        config.admin_group = "no-such-group-smsgate".into();
        let map = AccessMap::from_config(&config).unwrap();
        assert_eq!(map.accounts[0].gids, vec![0, 4321]);
        assert_eq!(map.admin_gid, None);
        config.accounts[0].groups = vec!["no-such-group-smsgate".into()];
        let err = AccessMap::from_config(&config).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn root_is_admin_without_account() {
        let c = map().resolve(0, &[0]).unwrap();
        assert!(c.admin);
        assert_eq!(c.account, None);
    }

    #[test]
    fn uid_wins_over_group() {
        // uid 1002 is in group 2001 (shop's group) but listed by uid under clinic.
        let c = map().resolve(1002, &[2001]).unwrap();
        assert_eq!(c.account.as_deref(), Some("clinic"));
        assert!(!c.admin);
    }

    #[test]
    fn group_maps_in_config_order() {
        let c = map().resolve(1500, &[100, 2001]).unwrap();
        assert_eq!(c.account.as_deref(), Some("shop"));
        let c = map().resolve(1500, &[2002]).unwrap();
        assert_eq!(c.account.as_deref(), Some("clinic"));
    }

    #[test]
    fn admin_group_member_is_admin() {
        let c = map().resolve(1500, &[3000]).unwrap();
        assert!(c.admin);
        assert_eq!(c.account, None);
        let c = map().resolve(1001, &[3000]).unwrap();
        assert!(c.admin);
        assert_eq!(c.account.as_deref(), Some("shop"));
    }

    #[test]
    fn unknown_uid_is_forbidden_with_its_uid_named() {
        let err = map().resolve(4242, &[4242]).unwrap_err();
        assert_eq!(err.status(), 403);
        assert!(err.to_string().contains("uid 4242"), "{err}");
    }

    #[test]
    fn only_admins_act_for_other_accounts() {
        let user = map().resolve(1001, &[]).unwrap();
        assert_eq!(
            act_for(user.clone(), Some("shop"))
                .unwrap()
                .account
                .as_deref(),
            Some("shop")
        );
        assert_eq!(
            act_for(user.clone(), Some("clinic")).unwrap_err().status(),
            403
        );
        assert_eq!(act_for(user, Some("")).unwrap_err().status(), 400);
        let root = map().resolve(0, &[]).unwrap();
        let acting = act_for(root, Some("clinic")).unwrap();
        assert_eq!(acting.account.as_deref(), Some("clinic"));
        assert!(acting.admin);
    }
}
