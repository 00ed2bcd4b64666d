#pragma once
// Subscriber: the consuming half of the event system (ARCHITECTURE.md section 4, the Clone
// pattern's client). Effectively-exactly-once delivery of ONE publisher's stream into the
// subscribing service's own schema.
//
// Two threads, started by Start() and joined by Stop():
//  * the receiver owns the SUB socket: it connects to the bus' XPUB endpoint, subscribes to the
//    publisher's topic prefix (before any replay, so nothing falls between replay and live),
//    verifies every message with the publisher's key (wire.h) and moves verified ones into a
//    bounded queue (max_queue). A message that fails verification, has another frame count or
//    names another publisher is dropped and counted (RejectedMessages): it moves nothing, not
//    even the silence timer, so a forged event can never displace a real one. When the queue is
//    full it discards the queue and everything after it and flags an overflow instead of
//    buffering without bound.
//  * the applier reads the durable offset (consumer_offsets.last_seq), replays from it through
//    the publisher's EventLog.ListEvents until caught up, then consumes the queue: events with
//    seq <= offset are dropped; seq == offset + 1 are applied; a gap (seq > offset + 1), a
//    heartbeat announcing a later seq, an overflow, or silence longer than silence_timeout
//    (which also reconnects the socket) triggers a replay from the offset. Replayed events are
//    verified too (Event.mac, and the header names the publisher); one that fails stops the
//    replay (UNAUTHENTICATED, reason EVENT_MAC_INVALID), which is retried with back-off.
// EventLog calls carry Principal{SERVICE, service_name} signed with an auth::PrincipalCodec of
// `secret`, i.e. exactly what the process' own codec (server.gateway_secret_file) signs.
// Applying is one transaction per batch of consecutive events: for each event an inbox insert
// (dedup by (publisher, event_id)); `apply` runs only when the insert was new; then the offset
// update. So an event's effect, its inbox row and the offset commit together or not at all. If
// `apply` fails the transaction is rolled back and the events are retried (with back-off) from
// the offset: the stream never skips an event.
//
// Healthy() is false (NOT_SERVING through the ServerRunner) while the queue has overflowed and
// the replay has not caught up yet, while the events being applied are older than max_lag
// (including an event whose `apply` keeps failing), or while the publisher's log cannot serve
// the offset (events no longer there); it becomes true again once the subscriber has caught up
// from its offset. A publisher that is merely unreachable does not make it unhealthy.
//
// Metrics (labels subscriber, publisher): submarine_events_applied_total,
// submarine_events_gaps_total, submarine_events_replays_total,
// submarine_events_duplicates_total, submarine_events_subscriber_overflows_total,
// submarine_events_subscriber_reconnects_total, submarine_events_subscriber_lag_ms,
// submarine_events_subscriber_offset, and submarine_events_rejected_total (plus label reason).
//
// Thread-safety: Start()/Stop() from one controlling thread; Healthy(), offset() and stats()
// from any thread. `apply` is called on the applier thread only, never concurrently.

#include <grpcpp/client_context.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "common/db/pool.h"
#include "common/events/wire.h"
#include "common/rpc/server_runner.h"
#include "common/util/clock.h"
#include "submarine/common/v1/events.pb.h"

namespace submarine::events {

class Subscriber : public rpc::BackgroundTask {
 public:
  // Applies one event inside the subscriber's transaction (the inbox insert and the offset update
  // commit with it). A non-OK status rolls the whole transaction back.
  using ApplyFn = std::function<absl::Status(pqxx::work&, const submarine::common::v1::Event&)>;

  struct Options {
    std::string name;  // this subscriber, for logs and metrics, e.g. "audit.environment"
    // The subscribing service: its SERVICE principal on EventLog calls, e.g. "permission".
    std::string service_name;
    std::string publisher;           // whose stream, e.g. "environment"
    std::string topic_prefix;        // the publisher's prefix, e.g. "submarine.environment.v1."
    std::string subscribe_endpoint;  // the bus' XPUB endpoint
    std::string event_log_address;   // the publisher's gRPC address serving EventLog
    // The internal secret every Submarine process holds (server.gateway_secret_file, loaded with
    // auth::LoadInternalSecret), at least kMinSecretBytes: verifies the publisher's messages and
    // signs this subscriber's EventLog calls.
    std::string secret;
    // The subscriber's own pool (search_path = its schema, EventsMigrations applied). Not owned.
    db::ConnectionPool* pool = nullptr;
    ApplyFn apply;
    // Live messages held between the socket and the database; beyond it → overflow.
    size_t max_queue = 10000;
    // Events at most per apply transaction.
    size_t max_batch = 256;
    // Events older than this when applied make the subscriber unhealthy.
    std::chrono::milliseconds max_lag{60000};
    // No event and no heartbeat for this long: reconnect the socket and replay.
    std::chrono::milliseconds silence_timeout{5000};
    // Receive high-water mark of the SUB socket.
    int rcv_hwm = 100000;
    // Events per ListEvents page.
    int32_t replay_page_size = 1000;
    // Deadline of each ListEvents call and of each apply transaction.
    std::chrono::milliseconds call_timeout{10000};
    // Source of "now" for lag.
    const Clock* clock = &Clock::Real();
  };

  // Counters since construction.
  struct Stats {
    uint64_t applied = 0;         // events whose inbox insert was new (apply ran and committed)
    uint64_t duplicates = 0;      // events dropped as already applied (by offset or by inbox)
    uint64_t gaps = 0;            // sequence gaps seen on the live stream
    uint64_t heartbeat_gaps = 0;  // heartbeats announcing events not yet applied
    uint64_t replays = 0;         // replays completed (including the initial catch-up)
    uint64_t overflows = 0;       // times the bounded queue overflowed
    uint64_t reconnects = 0;      // socket reconnects after silence
    uint64_t rejected = 0;        // bus messages and replayed events that failed verification
  };

  explicit Subscriber(Options options);
  ~Subscriber() override;  // Stop()s

  std::string TaskName() const override;
  // INVALID_ARGUMENT if the options are incomplete (or the secret is too short); otherwise
  // starts both threads and returns.
  // Database and publisher trouble does not fail Start(): the applier retries.
  absl::Status Start() override;
  // Finishes the current transaction, closes the socket and joins. Idempotent.
  void Stop() override;
  bool Healthy() const override;

  // The durable offset as last read or committed by this subscriber (0 before it is known).
  uint64_t offset() const { return offset_.load(); }
  Stats stats() const;

 private:
  struct Counters;
  void ReceiveLoop();
  void ApplyLoop();

  Options options_;
  const EventKey key_;
  std::unique_ptr<Counters> counters_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> reconnect_{false};
  std::atomic<uint64_t> offset_{0};
  std::atomic<bool> lagging_{false};
  // Steady-clock nanoseconds of the last message received from the bus.
  std::atomic<int64_t> last_receive_ns_{0};
  Wakeup receiver_wakeup_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BusMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  // The receiver has subscribed (or given up connecting); the first replay waits for it.
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  // The ListEvents call in flight, cancelled by Stop().
  grpc::ClientContext* active_call_ ABSL_GUARDED_BY(mu_) = nullptr;

  std::thread receiver_;
  std::thread applier_;
};

}  // namespace submarine::events
