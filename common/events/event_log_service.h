#pragma once
// EventLogService: the replay channel of one publisher (the Clone pattern's catch-up side).
// ListEvents returns the publisher's sequenced outbox events with seq > after_seq, in order and
// without gaps, at most page_size of them (default 500, at most 5000, and about 4 MB), plus the
// publisher's last assigned sequence read after the page (so last_seq >= every returned seq).
// Errors: NOT_FOUND for another publisher's name, INVALID_ARGUMENT for a negative page_size,
// UNAVAILABLE / DEADLINE_EXCEEDED from the database. Thread-safe (gRPC calls it concurrently).

#include <string>

#include "common/db/pool.h"
#include "submarine/common/v1/events.grpc.pb.h"

namespace submarine::events {

class EventLogService final : public submarine::common::v1::EventLog::Service {
 public:
  // Serves ListEvents from the outbox; `pool` (not owned) has search_path set to the
  // publisher's schema.
  EventLogService(std::string publisher, db::ConnectionPool* pool);

  grpc::Status ListEvents(grpc::ServerContext* context,
                          const submarine::common::v1::ListEventsRequest* request,
                          submarine::common::v1::ListEventsResponse* response) override;

 private:
  std::string publisher_;
  db::ConnectionPool* pool_;
};

}  // namespace submarine::events
