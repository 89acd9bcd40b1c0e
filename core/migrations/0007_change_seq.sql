-- The change feed's update sequence: every stored write gives its document
-- the next number of this replica (`store::Writer` assigns it), so "what
-- changed after N" is a range scan, and a feed client resumes from the last
-- number it saw. Only the latest change of each document is kept.
ALTER TABLE docs ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
-- Whether that latest change came from a peer (1) or this node (0), so a
-- replayed event says what the live one said.
ALTER TABLE docs ADD COLUMN remote INTEGER NOT NULL DEFAULT 0;

-- Existing documents get numbers in the order they were last written; their
-- origin is unknown and recorded as local.
UPDATE docs SET seq = r.n
FROM (SELECT doc, row_number() OVER (ORDER BY updated_at, doc) AS n FROM docs) AS r
WHERE r.doc = docs.doc;

CREATE INDEX docs_seq ON docs (seq);
