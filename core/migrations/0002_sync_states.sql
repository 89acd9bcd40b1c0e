-- Automerge sync state per (peer, document), saved when a peer disconnects,
-- so a reconnect only exchanges what changed since.
CREATE TABLE sync_states (
    peer       TEXT NOT NULL,
    space      TEXT NOT NULL,
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    state      BLOB NOT NULL,
    PRIMARY KEY (peer, space, collection, id)
) WITHOUT ROWID;
