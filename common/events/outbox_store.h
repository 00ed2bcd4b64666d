#pragma once
// Every SQL statement of the publisher side (tables outbox, outbox_cursor and event_consumers of
// common/events/migrations), named "events.*" and prepared by the pool on every connection (part
// of events::Statements(), outbox.h). Each function runs inside the caller's transaction on a
// connection whose search_path is the service schema, and throws libpqxx exceptions; callers run
// them under ConnectionPool::Transact, which turns those into statuses. Stateless and thread-safe.

#include <cstdint>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/db/statement.h"
#include "submarine/common/v1/events.pb.h"

namespace submarine::events {

// The NOTIFY channel relays listen on; the payload is the schema whose outbox got a row.
inline constexpr char kOutboxChannel[] = "submarine_outbox";

struct OutboxCursor {
  uint64_t last_seq = 0;       // last sequence number assigned
  uint64_t published_seq = 0;  // every event up to here has been sent at least once
};

class OutboxStore {
 public:
  // Every statement of this store (pools register them through events::Statements()).
  static const db::StatementSet& Statements();

  // Inserts one unsequenced event and queues the relay's wake-up NOTIFY.
  static void Insert(pqxx::work& tx, const std::string& event_id, const std::string& topic,
                     const std::string& resource, const std::string& request_id,
                     const std::string& principal, const std::string& payload);

  // Creates the publisher's cursor row if missing.
  static void EnsureCursor(pqxx::work& tx, const std::string& publisher);

  // The publisher's cursor ({0, 0} if it has none yet).
  static OutboxCursor ReadCursor(pqxx::work& tx, const std::string& publisher);

  // Locks the cursor, gives the next `limit` (at most) unsequenced rows, in id order, the next
  // sequence numbers, advances the cursor's last_seq and raises its published_seq to at least
  // `published_seq`. Returns the sequenced events in seq order (empty if none were waiting).
  // The cursor row lock serializes concurrent relays, so sequences stay gapless and unique.
  static std::vector<submarine::common::v1::Event> Sequence(pqxx::work& tx,
                                                            const std::string& publisher,
                                                            uint32_t limit, uint64_t published_seq);

  // Raises the cursor's published_seq to `published_seq` (never lowers it).
  static void MarkPublished(pqxx::work& tx, const std::string& publisher, uint64_t published_seq);
  // Retention: deletes up to `limit` sent events committed more than `older_than_hours` ago
  // (this database's clock) and at or below the smallest acked_seq of the consumers heard from
  // within `consumer_ttl_hours` (no such consumer: no such bound); returns how many. Unsent
  // events are never deleted.
  static int64_t PrunePublished(pqxx::work& tx, const std::string& publisher,
                                uint32_t older_than_hours, uint32_t consumer_ttl_hours,
                                uint32_t limit);
  // Deletes the consumers not heard from within `consumer_ttl_hours`; returns how many.
  static int64_t ForgetConsumers(pqxx::work& tx, const std::string& publisher,
                                 uint32_t consumer_ttl_hours);
  // Sets `subscriber`'s acked_seq (and updated_at = now()), creating the consumer unless the
  // publisher already has `max_consumers` others; false if it was not recorded for that reason.
  static bool RecordConsumer(pqxx::work& tx, const std::string& publisher,
                             const std::string& subscriber, uint64_t acked_seq,
                             uint32_t max_consumers);

  // Sequenced events with after_seq < seq <= up_to_seq, in seq order, at most `limit`, stopping
  // early once the payloads exceed `max_bytes` (always at least one event if any matched).
  static std::vector<submarine::common::v1::Event> ReadEvents(pqxx::work& tx,
                                                              const std::string& publisher,
                                                              uint64_t after_seq,
                                                              uint64_t up_to_seq, uint32_t limit,
                                                              size_t max_bytes);
};

}  // namespace submarine::events
