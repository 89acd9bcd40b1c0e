-- The highest change sequence number handed out before rows holding it were
-- removed (a space left): the writer's counter and the feed's "latest" start
-- from the larger of this and max(docs.seq), so a number is never reused
-- and a client resuming from it misses nothing.
CREATE TABLE change_seq_floor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
