-- Spaces this device created or joined. Membership itself lives in each
-- space's `_weft/members` document, which syncs; this table is local.
CREATE TABLE spaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    joined_at  INTEGER NOT NULL
);
