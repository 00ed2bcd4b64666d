#include "common/events/event_log_service.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "common/events/outbox_store.h"
#include "common/status/status.h"

namespace submarine::events {
namespace {

constexpr char kErrorDomain[] = "events.submarine.io";
constexpr int32_t kDefaultPageSize = 500;
constexpr int32_t kMaxPageSize = 5000;
constexpr size_t kMaxPageBytes = 4 << 20;
constexpr size_t kMaxSubscriberName = 128;
constexpr uint32_t kMaxConsumers = 1000;

}  // namespace

bool IsValidSubscriberName(const std::string& name) {
  return !name.empty() && name.size() <= kMaxSubscriberName &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
                  c == '/' || c == '-';
         });
}

EventLogService::EventLogService(std::string publisher, db::ConnectionPool* pool,
                                 const std::string& secret)
    : publisher_(std::move(publisher)),
      pool_(pool),
      signed_(secret.size() >= kMinSecretBytes),
      key_(secret, publisher_) {}

grpc::Status EventLogService::ListEvents(grpc::ServerContext* context,
                                         const submarine::common::v1::ListEventsRequest* request,
                                         submarine::common::v1::ListEventsResponse* response) {
  return rpc::HandleCall(*context, kErrorDomain, [&](const rpc::CallInfo& call) -> absl::Status {
    if (request->publisher() != publisher_)
      return NotFound("publisher", QuoteInput(request->publisher()));
    if (request->page_size() < 0) return InvalidField("page_size", "must not be negative");
    if (!signed_) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "EVENTS_NOT_SIGNED",
                       "this service has no internal secret to sign its events with");
    }
    int32_t page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
    page_size = std::min(page_size, kMaxPageSize);
    return pool_->Transact(call.deadline, [&](pqxx::work& tx) {
      response->Clear();
      // The cursor first, then the events up to it. Each statement sees every commit before it
      // (READ COMMITTED), and the relay commits sequence numbers with the cursor, so every event
      // up to last_seq is visible to the second read: one missing from the page was pruned.
      // (Read the other way round, a sequencing commit between the reads returned a page without
      // events the cursor announced, which a subscriber must take for pruned.)
      const uint64_t last_seq = OutboxStore::ReadCursor(tx, publisher_).last_seq;
      response->set_last_seq(last_seq);
      for (auto& e : OutboxStore::ReadEvents(tx, publisher_, request->after_seq(), last_seq,
                                             static_cast<uint32_t>(page_size), kMaxPageBytes)) {
        SignEvent(key_, &e);
        *response->add_events() = std::move(e);
      }
      return absl::OkStatus();
    });
  });
}

grpc::Status EventLogService::AcknowledgeEvents(
    grpc::ServerContext* context, const submarine::common::v1::AcknowledgeEventsRequest* request,
    submarine::common::v1::AcknowledgeEventsResponse*) {
  return rpc::HandleCall(*context, kErrorDomain, [&](const rpc::CallInfo& call) -> absl::Status {
    if (request->publisher() != publisher_)
      return NotFound("publisher", QuoteInput(request->publisher()));
    if (!IsValidSubscriberName(request->subscriber())) {
      return InvalidField("subscriber", absl::StrCat("must be 1-", kMaxSubscriberName,
                                                     " characters of [A-Za-z0-9._:/-]"));
    }
    return pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
      uint64_t last = OutboxStore::ReadCursor(tx, publisher_).last_seq;
      if (request->seq() > last) {
        return InvalidField(
            "seq", absl::StrCat("is above the last sequence number ", last, " of ", publisher_));
      }
      if (!OutboxStore::RecordConsumer(tx, publisher_, request->subscriber(), request->seq(),
                                       kMaxConsumers)) {
        return MakeError(absl::StatusCode::kResourceExhausted, "TOO_MANY_EVENT_CONSUMERS",
                         absl::StrCat(publisher_, " already records ", kMaxConsumers,
                                      " consumers; unused ones are forgotten after "
                                      "events.consumer_ttl_hours"));
      }
      return absl::OkStatus();
    });
  });
}

}  // namespace submarine::events
