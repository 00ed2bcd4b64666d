#include "common/events/event_log_service.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "common/events/outbox_store.h"
#include "common/status/status.h"

namespace submarine::events {
namespace {

constexpr char kErrorDomain[] = "events.submarine.io";
constexpr int32_t kDefaultPageSize = 500;
constexpr int32_t kMaxPageSize = 5000;
constexpr size_t kMaxPageBytes = 4 << 20;

}  // namespace

EventLogService::EventLogService(std::string publisher, db::ConnectionPool* pool)
    : publisher_(std::move(publisher)), pool_(pool) {}

grpc::Status EventLogService::ListEvents(grpc::ServerContext* context,
                                         const submarine::common::v1::ListEventsRequest* request,
                                         submarine::common::v1::ListEventsResponse* response) {
  if (request->publisher() != publisher_) {
    return ToGrpcStatus(NotFound("publisher", request->publisher()), kErrorDomain);
  }
  if (request->page_size() < 0) {
    return ToGrpcStatus(InvalidField("page_size", "must not be negative"), kErrorDomain);
  }
  int32_t page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  page_size = std::min(page_size, kMaxPageSize);
  db::Deadline deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) deadline = db::kNoDeadline;
  absl::Status st = pool_->Transact(deadline, [&](pqxx::work& tx) {
    response->Clear();
    // Events first, then the cursor: the cursor is at least the newest event returned.
    for (auto& e : OutboxStore::ReadEvents(tx, publisher_, request->after_seq(),
                                           std::numeric_limits<int64_t>::max(),
                                           static_cast<uint32_t>(page_size), kMaxPageBytes)) {
      *response->add_events() = std::move(e);
    }
    response->set_last_seq(OutboxStore::ReadCursor(tx, publisher_).last_seq);
    return absl::OkStatus();
  });
  return ToGrpcStatus(st, kErrorDomain);
}

}  // namespace submarine::events
