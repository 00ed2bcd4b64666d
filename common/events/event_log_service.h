#pragma once
// EventLogService: the replay channel of one publisher (the Clone pattern's catch-up side) and
// where its subscribers report how far they got. Both methods are internal_only
// (submarine.common.v1.internal_only): the caller must be a SERVICE principal verified under the
// process' internal secret (the call interceptor of common/rpc/call_context.h decides, from the
// proto option); anyone else gets UNAUTHENTICATED (no principal, or
// headers that do not verify) or PERMISSION_DENIED reason INTERNAL_ONLY (a USER principal).
//
// ListEvents returns the publisher's last assigned sequence (last_seq) and, read after it, its
// sequenced outbox events with after_seq < seq <= last_seq, in order and without gaps, at most
// page_size of them (default 500, at most 5000, and about 4 MB), each with its MAC (Event.mac,
// wire.h) under the publisher's key. Every event up to last_seq is committed before last_seq is
// read, so one the page lacks was pruned by retention: the first returned seq is then above
// after_seq + 1 (or the page is empty although last_seq > after_seq), which the subscriber
// reports as EVENTS_PRUNED. A page cut by size ends below last_seq; the next one continues.
//
// AcknowledgeEvents records a subscriber's durable offset in event_consumers (it may move back:
// an operator can rewind a subscriber); PruneOutbox (retention.h) never deletes above the
// smallest offset of the consumers heard from within events.consumer_ttl_hours. At most 1000
// consumers per publisher (a new one beyond: RESOURCE_EXHAUSTED reason TOO_MANY_EVENT_CONSUMERS).
//
// Errors: NOT_FOUND for another publisher's name; INVALID_ARGUMENT for a negative page_size, a
// malformed subscriber name or an acknowledged seq above the last assigned one;
// FAILED_PRECONDITION reason EVENTS_NOT_SIGNED if this service was given no internal secret;
// UNAVAILABLE / DEADLINE_EXCEEDED from the database. Thread-safe (gRPC calls it concurrently).

#include <string>

#include "absl/status/status.h"
#include "common/db/pool.h"
#include "common/events/wire.h"
#include "common/rpc/call_context.h"
#include "submarine/common/v1/events.grpc.pb.h"

namespace submarine::events {

// What AcknowledgeEvents accepts as a subscriber name: 1-128 characters of [A-Za-z0-9._:/-].
bool IsValidSubscriberName(const std::string& name);

class EventLogService final : public submarine::common::v1::EventLog::Service {
 public:
  // Serves `publisher` from the outbox; `pool` (not owned) has search_path set to the
  // publisher's schema; `secret` is the internal secret (server.gateway_secret_file) the
  // publisher's relay signs with, at least kMinSecretBytes.
  EventLogService(std::string publisher, db::ConnectionPool* pool, const std::string& secret);

  grpc::Status ListEvents(grpc::ServerContext* context,
                          const submarine::common::v1::ListEventsRequest* request,
                          submarine::common::v1::ListEventsResponse* response) override;

  grpc::Status AcknowledgeEvents(
      grpc::ServerContext* context, const submarine::common::v1::AcknowledgeEventsRequest* request,
      submarine::common::v1::AcknowledgeEventsResponse* response) override;

 private:
  std::string publisher_;
  db::ConnectionPool* pool_;
  bool signed_;
  EventKey key_;
};

}  // namespace submarine::events
