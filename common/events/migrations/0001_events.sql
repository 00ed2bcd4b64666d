-- Event tables of common/events, created in the schema of every service that publishes or
-- subscribes (ARCHITECTURE.md section 4). One publisher per schema.

-- Publisher side: events written in the business transaction, sequenced and sent by the relay.
CREATE TABLE outbox (
  id           BIGSERIAL   PRIMARY KEY,          -- insert order only; NOT the public sequence
  event_id     UUID        NOT NULL UNIQUE,      -- idempotency key for consumers
  topic        TEXT        NOT NULL,             -- fully qualified payload message name
  resource     TEXT        NOT NULL,             -- resource name the event is about
  request_id   TEXT        NOT NULL DEFAULT '',
  principal    TEXT        NOT NULL DEFAULT '',
  payload      BYTEA       NOT NULL,             -- serialized payload message
  occurred_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  seq          BIGINT      UNIQUE,               -- gapless, assigned by the relay
  published_at TIMESTAMPTZ                       -- set once the relay has sent the event
);
CREATE INDEX outbox_unsequenced ON outbox (id) WHERE seq IS NULL;

-- The relay's sequence counter (last_seq) and send high-water mark (published_seq), per publisher.
CREATE TABLE outbox_cursor (
  publisher     TEXT   PRIMARY KEY,
  last_seq      BIGINT NOT NULL DEFAULT 0,
  published_seq BIGINT NOT NULL DEFAULT 0
);

-- Subscriber side: events already applied (dedup by event id) and the durable offset.
CREATE TABLE inbox (
  publisher    TEXT        NOT NULL,
  event_id     UUID        NOT NULL,
  seq          BIGINT      NOT NULL,
  processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (publisher, event_id)
);

CREATE TABLE consumer_offsets (
  publisher  TEXT        PRIMARY KEY,
  last_seq   BIGINT      NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
