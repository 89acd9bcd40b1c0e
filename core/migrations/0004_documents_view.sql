-- `documents` lists user documents only: Weft's own (collection `_weft`,
-- such as membership logs) stay out of queries and counts.
DROP VIEW documents;
CREATE VIEW documents AS
    SELECT space, collection, id, json, updated_at FROM docs
    WHERE deleted = 0 AND collection <> '_weft';
