-- Sync states are bounded: per (peer, space) the newest are kept (by
-- `saved_at`, unix milliseconds), and states of peers not seen for a while
-- are dropped (by `sync_peers.saved_at`, when states with the peer were
-- last saved). Existing rows count as saved now.
ALTER TABLE sync_states ADD COLUMN saved_at INTEGER NOT NULL DEFAULT 0;
UPDATE sync_states SET saved_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;

CREATE TABLE sync_peers (
    peer     TEXT PRIMARY KEY,
    saved_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO sync_peers (peer, saved_at)
    SELECT peer, max(saved_at) FROM sync_states GROUP BY peer;

-- Earlier versions saved states for any document a peer named, held here
-- or not; only states of stored documents (tombstones included) remain.
DELETE FROM sync_states
WHERE NOT EXISTS (SELECT 1 FROM docs d
                  WHERE d.space = sync_states.space
                    AND d.collection = sync_states.collection
                    AND d.id = sync_states.id);
