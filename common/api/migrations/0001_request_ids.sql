-- AIP-155 idempotency of common/api (component "idempotency"), in every service schema: the
-- first answer to a request_id, returned again for a repeat of the same request.
CREATE TABLE request_ids (
  request_id   TEXT        PRIMARY KEY,
  method       TEXT        NOT NULL,  -- the RPC that used it
  request_hash TEXT        NOT NULL,  -- of (method, caller, request): a different request is refused
  response     BYTEA       NOT NULL,  -- the serialized answer (sealed where answers hold secrets)
  created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX request_ids_by_age ON request_ids (created_at);
