#include "common/events/retention.h"

#include "common/events/inbox_store.h"
#include "common/events/outbox_store.h"
#include "common/status/status.h"

namespace submarine::events {
namespace {

constexpr uint32_t kBatch = 5000;  // short transactions; the loop (or the next period) goes on

// Runs `prune(tx)` (which deletes at most kBatch rows) in transactions until a batch comes back
// short; returns the total deleted.
template <typename Prune>
absl::StatusOr<int64_t> InBatches(db::ConnectionPool& pool, Prune prune) {
  int64_t total = 0;
  for (;;) {
    int64_t deleted = 0;
    SUBMARINE_RETURN_IF_ERROR(pool.Transact(db::kNoDeadline, [&](pqxx::work& tx) {
      deleted = prune(tx);
      return absl::OkStatus();
    }));
    total += deleted;
    if (deleted < kBatch) return total;
  }
}

}  // namespace

absl::StatusOr<int64_t> PruneOutbox(db::ConnectionPool& pool, const std::string& publisher,
                                    const submarine::config::v1::EventsConfig& events) {
  const uint32_t retention = events.has_outbox_retention_hours() ? events.outbox_retention_hours()
                                                                 : kDefaultOutboxRetentionHours;
  const uint32_t ttl =
      events.has_consumer_ttl_hours() ? events.consumer_ttl_hours() : kDefaultConsumerTtlHours;
  SUBMARINE_RETURN_IF_ERROR(pool.Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    OutboxStore::ForgetConsumers(tx, publisher, ttl);
    return absl::OkStatus();
  }));
  return InBatches(pool, [&](pqxx::work& tx) {
    return OutboxStore::PrunePublished(tx, publisher, retention, ttl, kBatch);
  });
}

absl::StatusOr<int64_t> PruneInbox(db::ConnectionPool& pool,
                                   const submarine::config::v1::EventsConfig& events) {
  const uint32_t retention = events.has_inbox_retention_hours() ? events.inbox_retention_hours()
                                                                : kDefaultInboxRetentionHours;
  return InBatches(pool, [&](pqxx::work& tx) { return InboxStore::Prune(tx, retention, kBatch); });
}

}  // namespace submarine::events
