#include "common/events/outbox_store.h"

#include <algorithm>
#include <limits>

#include "common/events/wire.h"

namespace submarine::events {
namespace {

using submarine::common::v1::Event;

// One statement, one round trip: the insert and the relay's wake-up (sent at commit; identical
// notifications of one transaction are folded into one by PostgreSQL).
constexpr db::Statement kInsertEvent{"events.insert_event", R"sql(
WITH inserted AS (
  INSERT INTO outbox (event_id, topic, resource, request_id, principal, payload)
  VALUES ($1::uuid, $2, $3, $4, $5, $6)
  RETURNING id)
SELECT pg_notify($7, current_schema()) FROM inserted)sql"};

constexpr db::Statement kEnsureCursor{
    "events.ensure_cursor",
    "INSERT INTO outbox_cursor (publisher) VALUES ($1) ON CONFLICT (publisher) DO NOTHING"};

constexpr db::Statement kReadCursor{
    "events.read_cursor", "SELECT last_seq, published_seq FROM outbox_cursor WHERE publisher = $1"};

constexpr db::Statement kLockCursor{
    "events.lock_cursor", "SELECT last_seq FROM outbox_cursor WHERE publisher = $1 FOR UPDATE"};

// Numbers the oldest unsequenced rows after the locked cursor value $1, in id order, and moves
// the cursor (only written when something changed).
constexpr db::Statement kAssignSeq{"events.assign_seq", R"sql(
WITH batch AS (
  SELECT id FROM outbox WHERE seq IS NULL ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
), numbered AS (
  SELECT id, $1::bigint + row_number() OVER (ORDER BY id) AS seq FROM batch
), sequenced AS (
  UPDATE outbox o SET seq = n.seq FROM numbered n WHERE o.id = n.id
  RETURNING o.seq, o.event_id, o.topic, o.resource, o.request_id, o.principal, o.payload,
            o.occurred_at
), advanced AS (
  UPDATE outbox_cursor
  SET last_seq = $1::bigint + (SELECT count(*) FROM sequenced),
      published_seq = GREATEST(published_seq, $4)
  WHERE publisher = $3 AND ((SELECT count(*) FROM sequenced) > 0 OR published_seq < $4)
)
SELECT seq, event_id::text, topic, resource, request_id, principal, payload,
       (EXTRACT(EPOCH FROM occurred_at) * 1000000)::bigint
FROM sequenced ORDER BY seq)sql"};

// Deletes (at most $3 of) the events already sent whose commit is older than $2 hours and that
// every consumer heard from within $4 hours has acknowledged (with no such consumer: all of them).
constexpr db::Statement kPrunePublished{"events.prune_published", R"sql(
DELETE FROM outbox WHERE id IN (
  SELECT o.id FROM outbox o, outbox_cursor c
  WHERE c.publisher = $1 AND o.seq IS NOT NULL AND o.seq <= c.published_seq
    AND o.occurred_at < now() - $2::bigint * INTERVAL '1 hour'
    AND o.seq <= COALESCE((SELECT min(acked_seq) FROM event_consumers
                           WHERE publisher = $1
                             AND updated_at >= now() - $4::bigint * INTERVAL '1 hour'),
                          c.published_seq)
  ORDER BY o.id LIMIT $3))sql"};

// Forgets consumers not heard from within $2 hours: they no longer hold pruning back.
constexpr db::Statement kForgetConsumers{"events.forget_consumers", R"sql(
DELETE FROM event_consumers
WHERE publisher = $1 AND updated_at < now() - $2::bigint * INTERVAL '1 hour')sql"};

// Records a consumer's offset (it may move back: an operator can rewind a subscriber) unless the
// publisher already knows $4 others.
constexpr db::Statement kRecordConsumer{"events.record_consumer", R"sql(
INSERT INTO event_consumers (publisher, subscriber, acked_seq)
SELECT $1, $2, $3
WHERE EXISTS (SELECT 1 FROM event_consumers WHERE publisher = $1 AND subscriber = $2)
   OR (SELECT count(*) FROM event_consumers WHERE publisher = $1) < $4
ON CONFLICT (publisher, subscriber)
DO UPDATE SET acked_seq = EXCLUDED.acked_seq, updated_at = now())sql"};

constexpr db::Statement kMarkPublished{"events.mark_published", R"sql(
UPDATE outbox_cursor SET published_seq = $2
WHERE publisher = $1 AND published_seq < $2)sql"};

constexpr db::Statement kReadEvents{"events.read_events", R"sql(
SELECT seq, event_id::text, topic, resource, request_id, principal, payload,
       (EXTRACT(EPOCH FROM occurred_at) * 1000000)::bigint
FROM outbox WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3)sql"};

// Columns: seq, event_id, topic, resource, request_id, principal, payload, occurred_at (µs).
Event EventFromRow(const pqxx::row& row, const std::string& publisher) {
  Event e;
  auto* h = e.mutable_header();
  h->set_publisher(publisher);
  h->set_seq(row[0].as<int64_t>());
  h->set_event_id(row[1].as<std::string>());
  e.set_topic(row[2].as<std::string>());
  h->set_resource(row[3].as<std::string>());
  h->set_request_id(row[4].as<std::string>());
  h->set_principal(row[5].as<std::string>());
  e.set_payload(pqxx::binarystring(row[6]).str());
  ToTimestamp(
      std::chrono::system_clock::time_point(std::chrono::microseconds(row[7].as<int64_t>())),
      h->mutable_occurred_at());
  return e;
}

int64_t AsBigint(uint64_t v) {
  return static_cast<int64_t>(std::min<uint64_t>(v, std::numeric_limits<int64_t>::max()));
}

}  // namespace

const db::StatementSet& OutboxStore::Statements() {
  static const auto* set = new db::StatementSet{
      kInsertEvent,    kEnsureCursor,    kReadCursor,     kLockCursor,    kAssignSeq,
      kPrunePublished, kForgetConsumers, kRecordConsumer, kMarkPublished, kReadEvents};
  return *set;
}

void OutboxStore::Insert(pqxx::work& tx, const std::string& event_id, const std::string& topic,
                         const std::string& resource, const std::string& request_id,
                         const std::string& principal, const std::string& payload) {
  db::Exec(tx, kInsertEvent, event_id, topic, resource, request_id, principal,
           pqxx::binarystring(payload.data(), payload.size()), std::string(kOutboxChannel));
}

void OutboxStore::EnsureCursor(pqxx::work& tx, const std::string& publisher) {
  db::Exec(tx, kEnsureCursor, publisher);
}

OutboxCursor OutboxStore::ReadCursor(pqxx::work& tx, const std::string& publisher) {
  OutboxCursor c;
  auto r = db::Exec(tx, kReadCursor, publisher);
  if (!r.empty()) {
    c.last_seq = r[0][0].as<int64_t>();
    c.published_seq = r[0][1].as<int64_t>();
  }
  return c;
}

std::vector<Event> OutboxStore::Sequence(pqxx::work& tx, const std::string& publisher,
                                         uint32_t limit, uint64_t published_seq) {
  auto cursor = db::Exec(tx, kLockCursor, publisher);
  if (cursor.empty()) {
    EnsureCursor(tx, publisher);
    cursor = db::Exec(tx, kLockCursor, publisher);
  }
  const int64_t last = cursor[0][0].as<int64_t>();
  auto rows = db::Exec(tx, kAssignSeq, last, static_cast<int64_t>(limit), publisher,
                       AsBigint(published_seq));
  std::vector<Event> events;
  events.reserve(rows.size());
  for (const auto& row : rows) events.push_back(EventFromRow(row, publisher));
  return events;
}

void OutboxStore::MarkPublished(pqxx::work& tx, const std::string& publisher,
                                uint64_t published_seq) {
  db::Exec(tx, kMarkPublished, publisher, AsBigint(published_seq));
}

int64_t OutboxStore::PrunePublished(pqxx::work& tx, const std::string& publisher,
                                    uint32_t older_than_hours, uint32_t consumer_ttl_hours,
                                    uint32_t limit) {
  return db::Exec(tx, kPrunePublished, publisher, static_cast<int64_t>(older_than_hours),
                  static_cast<int64_t>(limit), static_cast<int64_t>(consumer_ttl_hours))
      .affected_rows();
}

int64_t OutboxStore::ForgetConsumers(pqxx::work& tx, const std::string& publisher,
                                     uint32_t consumer_ttl_hours) {
  return db::Exec(tx, kForgetConsumers, publisher, static_cast<int64_t>(consumer_ttl_hours))
      .affected_rows();
}

bool OutboxStore::RecordConsumer(pqxx::work& tx, const std::string& publisher,
                                 const std::string& subscriber, uint64_t acked_seq,
                                 uint32_t max_consumers) {
  return db::Exec(tx, kRecordConsumer, publisher, subscriber, AsBigint(acked_seq),
                  static_cast<int64_t>(max_consumers))
             .affected_rows() > 0;
}

std::vector<Event> OutboxStore::ReadEvents(pqxx::work& tx, const std::string& publisher,
                                           uint64_t after_seq, uint64_t up_to_seq, uint32_t limit,
                                           size_t max_bytes) {
  auto rows = db::Exec(tx, kReadEvents, AsBigint(after_seq), AsBigint(up_to_seq),
                       static_cast<int64_t>(limit));
  std::vector<Event> events;
  events.reserve(rows.size());
  size_t bytes = 0;
  for (const auto& row : rows) {
    events.push_back(EventFromRow(row, publisher));
    bytes += events.back().ByteSizeLong();
    if (bytes >= max_bytes) break;
  }
  return events;
}

}  // namespace submarine::events
