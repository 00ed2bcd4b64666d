-- Environment profiles of the environment service. The full resource is kept as a serialized
-- submarine.environment.v1.Environment (body); the columns beside it exist to filter, sort and
-- enforce uniqueness.
CREATE TABLE environments (
  id             BIGSERIAL PRIMARY KEY,        -- internal; keyset tie-breaker
  project        TEXT        NOT NULL,
  environment_id TEXT        NOT NULL,         -- last segment of the resource name
  uid            TEXT        NOT NULL UNIQUE,  -- also Apache Submarine's environmentId
  display_name   TEXT        NOT NULL DEFAULT '',
  image          TEXT        NOT NULL,
  labels         JSONB       NOT NULL DEFAULT '{}',
  body           BYTEA       NOT NULL,
  etag           TEXT        NOT NULL,
  create_time    TIMESTAMPTZ NOT NULL,
  update_time    TIMESTAMPTZ NOT NULL,
  UNIQUE (project, environment_id)
);
CREATE INDEX environments_by_create_time ON environments (project, create_time, id);
CREATE INDEX environments_labels ON environments USING GIN (labels);

-- Counter behind the Submarine-style uid environment_<millis>_<nnnn>.
CREATE SEQUENCE environment_uid_seq;

-- AIP-155 idempotency: the first answer to a request_id, returned again on a repeat.
CREATE TABLE request_dedup (
  request_id TEXT        PRIMARY KEY,
  method     TEXT        NOT NULL,
  response   BYTEA       NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One-time facts about this schema, e.g. that the built-in profiles were seeded.
CREATE TABLE service_state (
  key        TEXT        PRIMARY KEY,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
