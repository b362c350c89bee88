//! The AT commands one virtual modem answers, in groups: V.250 basics and identity
//! (`basic.rs`), network and SIM state (`network.rs`), SMS (`messages.rs`), and the rest with the
//! dialect's vendor commands (`vendor.rs`). [`Engine::command`] asks each group in this order;
//! the first that knows the command answers it.
//!
//! What must always hold: the groups are tried in the order the one match had its arms, so a
//! command is answered by the same arm as before the split; every command gets one [`Outcome`].

use super::*;

mod basic;
mod messages;
mod network;
mod vendor;

impl Engine {
    /// The outcome of one parsed command.
    pub(in crate::sim::modem) fn command(&mut self, cmd: &Cmd) -> Outcome {
        if let Some(outcome) = self.basic(cmd) {
            return outcome;
        }
        if let Some(outcome) = self.network(cmd) {
            return outcome;
        }
        if let Some(outcome) = self.messages(cmd) {
            return outcome;
        }
        self.other(cmd)
    }
}
