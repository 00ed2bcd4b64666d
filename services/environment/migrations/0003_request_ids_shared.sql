-- Request-id answers moved to the kit's shared request_ids table (common/api, series
-- "idempotency", applied before this one): keep what is there, then drop the old table.
INSERT INTO request_ids (request_id, method, request_hash, response, created_at)
SELECT request_id, method, request_hash, response, created_at FROM request_dedup
ON CONFLICT (request_id) DO NOTHING;
DROP TABLE request_dedup;
