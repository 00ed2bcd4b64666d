-- Per-user credentials (sealed at rest) and the audit log.

-- The secret is only ever stored as auth::Seal(master_key, secret) = nonce || ciphertext.
-- A deleted user's credentials go with them.
CREATE TABLE credentials (
  username      TEXT        NOT NULL REFERENCES users (username) ON DELETE CASCADE,
  credential_id TEXT        NOT NULL,
  type          TEXT        NOT NULL,
  description   TEXT        NOT NULL DEFAULT '',
  sealed        BYTEA       NOT NULL,
  create_time   TIMESTAMPTZ NOT NULL,
  update_time   TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (username, credential_id)
);

-- One row per event of every recorded stream (inserted by the audit subscribers in the same
-- transaction as their inbox row and offset, so each event is recorded exactly once).
CREATE TABLE audit_events (
  id          BIGSERIAL   PRIMARY KEY,         -- keyset tie-breaker
  event_id    UUID        NOT NULL UNIQUE,
  publisher   TEXT        NOT NULL,
  seq         BIGINT      NOT NULL,
  type        TEXT        NOT NULL,            -- the topic (fully qualified event name)
  resource    TEXT        NOT NULL DEFAULT '',
  principal   TEXT        NOT NULL DEFAULT '',
  request_id  TEXT        NOT NULL DEFAULT '',
  occur_time  TIMESTAMPTZ NOT NULL,
  record_time TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_by_time ON audit_events (occur_time DESC, id DESC);
CREATE INDEX audit_events_by_principal ON audit_events (principal, occur_time DESC, id DESC);
-- Prefix searches (resource LIKE 'projects/p/%') need the pattern operator class.
CREATE INDEX audit_events_by_resource ON audit_events (resource text_pattern_ops);
