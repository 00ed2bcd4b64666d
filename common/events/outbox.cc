#include "common/events/outbox.h"

#include "absl/strings/str_cat.h"
#include "common/events/inbox_store.h"
#include "common/events/outbox_store.h"
#include "common/status/status.h"
#include "common/util/clock.h"

namespace submarine::events {

const db::StatementSet& Statements() {
  static const auto* set = [] {
    auto* all = new db::StatementSet(OutboxStore::Statements());
    const db::StatementSet& inbox = InboxStore::Statements();
    all->insert(all->end(), inbox.begin(), inbox.end());
    return all;
  }();
  return *set;
}

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

}  // namespace submarine::events
