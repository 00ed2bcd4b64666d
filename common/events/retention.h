#pragma once
// Retention of the event tables (ARCHITECTURE.md section 4: nothing grows without bound), run by
// one replica of a service (a db::PeriodicLeaderTask in its housekeeping), each function in
// short transactions of at most 5000 rows until nothing is left to delete.
//
// Publisher side, PruneOutbox: an outbox event is deleted once ALL of these hold:
//   * it was sent to the bus (seq <= outbox_cursor.published_seq): unsent events never go;
//   * it committed more than events.outbox_retention_hours ago (default 168 h);
//   * every consumer the publisher heard from within events.consumer_ttl_hours (default 720 h)
//     has acknowledged it: seq <= min(event_consumers.acked_seq) over those consumers. Subscribers
//     report their durable offset through EventLog.AcknowledgeEvents (about every 10 s and when
//     they stop). With no such consumer the rule is time-based only. A consumer silent for longer
//     than the TTL (decommissioned, or down for a month) no longer holds events back and is
//     forgotten; if it comes back behind the pruned events it is stranded (NOT_SERVING, reason
//     EVENTS_PRUNED, see subscriber.h) until an operator moves its offset.
// Every time is this database's clock (occurred_at, updated_at and now()), never another host's.
//
// Subscriber side, PruneInbox: an inbox row is deleted once it was processed more than
// events.inbox_retention_hours ago (default 168 h) and its seq is at or below its publisher's
// offset in consumer_offsets. Such rows are no longer needed for deduplication (events at or
// below the offset are dropped by sequence before they reach the inbox); keeping them for the
// retention lets an operator rewind an offset within it without anything applied twice.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/db/pool.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::events {

inline constexpr uint32_t kDefaultOutboxRetentionHours = 168;
inline constexpr uint32_t kDefaultConsumerTtlHours = 720;
inline constexpr uint32_t kDefaultInboxRetentionHours = 168;

// Deletes `publisher`'s outbox events as described above and forgets its consumers not heard
// from within the TTL; returns how many events were deleted. Database errors as statuses
// (ConnectionPool::Transact); what was deleted before an error stays deleted.
absl::StatusOr<int64_t> PruneOutbox(db::ConnectionPool& pool, const std::string& publisher,
                                    const submarine::config::v1::EventsConfig& events);

// Deletes inbox rows of every publisher of `pool`'s schema as described above; returns how many.
// Errors as for PruneOutbox.
absl::StatusOr<int64_t> PruneInbox(db::ConnectionPool& pool,
                                   const submarine::config::v1::EventsConfig& events);

}  // namespace submarine::events
