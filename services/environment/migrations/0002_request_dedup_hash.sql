-- A request_id answers exactly one request: the hash of the request it was first used with is
-- kept, so reusing the id for a different request is refused instead of replaying the wrong
-- answer.
ALTER TABLE request_dedup ADD COLUMN request_hash TEXT NOT NULL DEFAULT '';
