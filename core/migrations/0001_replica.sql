-- One row per document: its current heads and materialized JSON.
CREATE TABLE docs (
    doc         INTEGER PRIMARY KEY,
    space       TEXT    NOT NULL,
    collection  TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    heads       BLOB    NOT NULL,   -- concatenated 32-byte change hashes, sorted
    json        TEXT,               -- NULL once deleted
    deleted     INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL,   -- unix milliseconds of the last write here
    chunk_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (space, collection, id)
);

-- Automerge data: one snapshot and/or incremental change chunks per document,
-- concatenated in seq order to load it.
CREATE TABLE chunks (
    doc  INTEGER NOT NULL,            -- docs.doc
    seq  INTEGER NOT NULL,
    data BLOB    NOT NULL,
    PRIMARY KEY (doc, seq)
) WITHOUT ROWID;

-- What the read-only SQL entry point is meant to query.
CREATE VIEW documents AS
    SELECT space, collection, id, json, updated_at FROM docs WHERE deleted = 0;

-- Every write goes through this view: one INSERT row carries the document
-- row and its new chunk, and the trigger stores both. This makes a write one
-- statement (sqlx pays a thread round trip per statement) and a group of
-- writes one multi-row statement, committed atomically.
CREATE VIEW doc_writes AS
    SELECT space, collection, id, heads, json, deleted, updated_at,
           NULL AS chunk, 0 AS snapshot
    FROM docs WHERE 0;

CREATE TRIGGER doc_writes_insert INSTEAD OF INSERT ON doc_writes
BEGIN
    INSERT INTO docs (space, collection, id, heads, json, deleted, updated_at, chunk_count)
    VALUES (NEW.space, NEW.collection, NEW.id, NEW.heads, NEW.json, NEW.deleted,
            NEW.updated_at, 0)
    ON CONFLICT (space, collection, id) DO UPDATE SET
        heads = excluded.heads, json = excluded.json, deleted = excluded.deleted,
        updated_at = excluded.updated_at;
    -- A snapshot replaces every earlier chunk of the document.
    DELETE FROM chunks
    WHERE NEW.snapshot
      AND doc = (SELECT doc FROM docs WHERE space = NEW.space
                 AND collection = NEW.collection AND id = NEW.id);
    INSERT INTO chunks (doc, seq, data)
    SELECT d.doc, coalesce((SELECT max(seq) FROM chunks WHERE doc = d.doc), 0) + 1,
           NEW.chunk
    FROM docs d
    WHERE d.space = NEW.space AND d.collection = NEW.collection AND d.id = NEW.id
      AND NEW.chunk IS NOT NULL;
    UPDATE docs SET chunk_count = CASE WHEN NEW.snapshot THEN 1 ELSE chunk_count + 1 END
    WHERE space = NEW.space AND collection = NEW.collection AND id = NEW.id
      AND NEW.chunk IS NOT NULL;
END;

-- JSON fields the user asked to index (see Node::create_index).
CREATE TABLE json_indexes (
    field TEXT PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);
