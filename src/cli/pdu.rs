//! `smsgate pdu encode|decode|count`: the codec on the command line.

use clap::Args;

#[derive(Debug, Args)]
pub struct PduArgs {}

pub fn run(_args: PduArgs) -> anyhow::Result<()> {
    anyhow::bail!("smsgate pdu: not built yet")
}
