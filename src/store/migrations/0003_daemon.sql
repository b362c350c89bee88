-- Indexes for the daemon's views: an account's replies (inbox scoping) and per-SIM totals.
CREATE INDEX messages_account_recipient ON messages(account, recipient);
CREATE INDEX parts_sim_state ON parts(sim_id, state) WHERE sim_id IS NOT NULL;
CREATE INDEX inbound_sim ON inbound(sim_id);
