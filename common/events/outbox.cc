#include "common/events/outbox.h"

#include "absl/strings/str_cat.h"
#include "common/db/pool.h"
#include "common/events/outbox_store.h"
#include "common/status/status.h"
#include "common/util/clock.h"

namespace submarine::events {

absl::Status AppendToOutbox(pqxx::work& tx, const google::protobuf::Message& payload,
                            const std::string& resource, const std::string& request_id,
                            const std::string& principal) {
  std::string bytes;
  if (!payload.SerializeToString(&bytes)) {
    return Internal(absl::StrCat("event ", payload.GetDescriptor()->full_name(), " of ", resource,
                                 " does not serialize"));
  }
  // Database exceptions propagate to the caller's ConnectionPool::Transact, which owns the
  // retry of deadlocks, serialization failures and connections lost before COMMIT.
  OutboxStore::Insert(tx, IdGenerator::Secure().Uuid(), payload.GetDescriptor()->full_name(),
                      resource, request_id, principal, bytes);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> PruneOutbox(db::ConnectionPool& pool, const std::string& publisher,
                                    uint32_t older_than_hours) {
  constexpr uint32_t kBatch = 5000;  // short transactions; the next period continues
  int64_t total = 0;
  for (;;) {
    int64_t deleted = 0;
    SUBMARINE_RETURN_IF_ERROR(pool.Transact(db::kNoDeadline, [&](pqxx::work& tx) {
      deleted = OutboxStore::PrunePublished(tx, publisher, older_than_hours, kBatch);
      return absl::OkStatus();
    }));
    total += deleted;
    if (deleted < kBatch) return total;
  }
}

}  // namespace submarine::events
