-- Core schema: messages, parts, SIMs, inbound messages. Owned by the store module.
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
