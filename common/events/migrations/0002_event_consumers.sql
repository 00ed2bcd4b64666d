-- Retention that never strands a known subscriber (common/events/retention.h).

-- Publisher side: the durable offsets subscribers reported through EventLog.AcknowledgeEvents.
-- PruneOutbox keeps every event above the smallest acked_seq of the consumers heard from within
-- events.consumer_ttl_hours (updated_at is this database's clock, so no host clocks are compared).
CREATE TABLE event_consumers (
  publisher  TEXT        NOT NULL,
  subscriber TEXT        NOT NULL,
  acked_seq  BIGINT      NOT NULL,
  updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (publisher, subscriber)
);

-- Subscriber side: PruneInbox deletes a publisher's rows at or below its offset, oldest first.
CREATE INDEX inbox_by_seq ON inbox (publisher, seq);
