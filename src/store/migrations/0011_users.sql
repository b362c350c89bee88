-- Users of the web console and their sessions (issue 13). A user belongs to one account (role
-- 'customer') or to the operator's staff (role 'reviewer' or 'admin', no account). The password
-- is kept only as an argon2id hash in PHC form (`$argon2id$v=19$...`, made and checked by the
-- daemon; it never leaves it). `must_change_password` is set for a new user and after an
-- admin's reset; `failed_logins` counts consecutive failures and resets on success or when the
-- user is locked (`locked_until`). A session is a random token shown once to the front end;
-- only its SHA-256 is kept (`token_hash`), as for API keys. `last_seen_at` slides the idle
-- timeout; `expires_at` is the absolute end. An ended session (logout, password change,
-- disable, expiry) is deleted: the audit log keeps the history. Times are Unix ms. Every
-- statement is IF NOT EXISTS, so a migration replayed after a hand-set version does not fail.
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL COLLATE NOCASE UNIQUE,
    account_id INTEGER REFERENCES accounts(id),
    role TEXT NOT NULL CHECK (role IN ('customer', 'reviewer', 'admin')),
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 1,
    disabled_at INTEGER,           -- Unix ms
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,          -- Unix ms
    last_login_at INTEGER,         -- Unix ms
    created_at INTEGER NOT NULL,   -- Unix ms
    password_changed_at INTEGER NOT NULL,
    CHECK ((role = 'customer') = (account_id IS NOT NULL))
) STRICT;

CREATE INDEX IF NOT EXISTS users_account ON users(account_id);

CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    token_hash BLOB NOT NULL UNIQUE,
    client_ip TEXT,
    created_at INTEGER NOT NULL,   -- Unix ms
    last_seen_at INTEGER NOT NULL, -- Unix ms
    expires_at INTEGER NOT NULL    -- Unix ms: the absolute end (idle or not)
) STRICT;

CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
