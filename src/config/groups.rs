//! Group names of the configuration resolved against this machine's group database: the
//! accounts' `groups` and the `admin_group`. The configuration owns this lookup so that both
//! `smsgate config check` and the API's access map (which reads it) resolve names one way.
//!
//! What must always hold: a numeric name is a gid as written; an account group that does not
//! resolve is an error (a typo would silently lock an account out); a missing admin group is
//! not an error, only a warning, because a fresh install has not created it yet and root stays
//! admin. Blocking (NSS lookups).

use super::{AccountConfig, Config};

/// The gid of a group name (or a numeric gid), `None` when no such group exists.
pub fn lookup_group(name: &str) -> Result<Option<u32>, String> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(Some(gid));
    }
    nix::unistd::Group::from_name(name)
        .map(|g| g.map(|g| g.gid.as_raw()))
        .map_err(|e| format!("looking up group {name:?}: {e}"))
}

/// The gids of an account's `groups`; a name that does not resolve is an error.
pub fn account_gids(account: &AccountConfig) -> Result<Vec<u32>, String> {
    let mut gids = Vec::with_capacity(account.groups.len());
    for group in &account.groups {
        let gid = lookup_group(group)?.ok_or_else(|| {
            format!(
                "accounts {:?}: group {group:?} does not exist",
                account.name
            )
        })?;
        gids.push(gid);
    }
    Ok(gids)
}

/// The gid of `admin_group`: `None` when it is empty or (with a warning) does not exist.
pub fn admin_gid(config: &Config) -> Result<Option<u32>, String> {
    match config.admin_group.as_str() {
        "" => Ok(None),
        name => {
            let gid = lookup_group(name)?;
            if gid.is_none() {
                tracing::warn!(
                    "admin_group {name:?} does not exist: only root is an admin of the API"
                );
            }
            Ok(gid)
        }
    }
}

/// Every group name of `config` resolves as the API's access map needs (see [`account_gids`],
/// [`admin_gid`]); the first error found.
pub fn check(config: &Config) -> Result<(), String> {
    for account in &config.accounts {
        account_gids(account)?;
    }
    admin_gid(config).map(|_| ())
}
