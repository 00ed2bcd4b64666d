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
// The applier reports the durable offset to the publisher (EventLog.AcknowledgeEvents as
// subscriber `name`) right after reading it, then every ack_interval, and once more when
// stopping (that last call waits at most 2 s), so retention never prunes what it has not
// applied (retention.h). A failed report is logged and retried at the next interval.
//
// Stranded: when the publisher no longer has the events after the offset (pruned by retention,
// or a new subscriber of a publisher whose history was pruned), the replay fails with
// FAILED_PRECONDITION reason EVENTS_PRUNED naming the publisher and the first missing sequence.
// The subscriber then logs an error, sets submarine_events_subscriber_stranded to 1, reports
// NOT_SERVING and retries every stranded_retry, re-reading its durable offset each time, so it
// recovers by itself once an operator restores the events or moves consumer_offsets past them.
//
// Health uses sequence numbers and the local steady clock only, never wall clocks of two hosts.
// The publisher's last sequence is known from verified heartbeats, live events and each
// ListEvents.last_seq; lag = that - offset (submarine_events_subscriber_lag_events). Healthy()
// is false (NOT_SERVING through the ServerRunner) while the queue has overflowed and the replay
// has not caught up yet, while stranded, and while the lag is positive and the offset has not
// advanced for max_lag (an event whose `apply` keeps failing, a replay that keeps failing while
// the stream moves on). A publisher that is merely unreachable does not make it unhealthy.
//
// Metrics (labels subscriber, publisher): submarine_events_applied_total,
// submarine_events_gaps_total, submarine_events_replays_total,
// submarine_events_duplicates_total, submarine_events_subscriber_overflows_total,
// submarine_events_subscriber_reconnects_total, submarine_events_subscriber_lag_events,
// submarine_events_subscriber_offset, submarine_events_subscriber_stranded, and
// submarine_events_rejected_total (plus label reason).
//
// Thread-safety: Start()/Stop() from one controlling thread; Healthy(), offset(), stranded() and
// stats() from any thread. `apply` is called on the applier thread only, never concurrently.

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
#include "submarine/common/v1/events.pb.h"

namespace submarine::events {

class Subscriber : public rpc::BackgroundTask {
 public:
  // Applies one event inside the subscriber's transaction (the inbox insert and the offset update
  // commit with it). A non-OK status rolls the whole transaction back.
  using ApplyFn = std::function<absl::Status(pqxx::work&, const submarine::common::v1::Event&)>;

  struct Options {
    // This subscriber, for logs, metrics and the publisher's consumer table (1-128 characters of
    // [A-Za-z0-9._:/-], unique among the publisher's subscribers), e.g. "permission.environment"
    // (the service host names them <service>.<publisher>).
    std::string name;
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
    // Behind the publisher with the offset not advancing for this long → unhealthy.
    std::chrono::milliseconds max_lag{60000};
    // No event and no heartbeat for this long: reconnect the socket and replay.
    std::chrono::milliseconds silence_timeout{5000};
    // Receive high-water mark of the SUB socket.
    int rcv_hwm = 100000;
    // Events per ListEvents page.
    int32_t replay_page_size = 1000;
    // Deadline of each ListEvents call and of each apply transaction.
    std::chrono::milliseconds call_timeout{10000};
    // Period of the offset reports to the publisher (EventLog.AcknowledgeEvents).
    std::chrono::milliseconds ack_interval{10000};
    // Period of the replay attempts while stranded.
    std::chrono::milliseconds stranded_retry{30000};
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
  // starts both threads and returns. Database and publisher trouble does not fail Start(): the
  // applier retries.
  absl::Status Start() override;
  // Finishes the current transaction, closes the socket, reports the offset and joins.
  // Idempotent.
  void Stop() override;
  bool Healthy() const override;

  // The durable offset as last read or committed by this subscriber (0 before it is known).
  uint64_t offset() const { return offset_.load(); }
  // Whether the publisher no longer has the events after the offset (see above).
  bool stranded() const { return stranded_.load(); }
  Stats stats() const;

 private:
  struct Counters;
  void ReceiveLoop();
  void ApplyLoop();
  // Publishes the lag after the offset or the publisher's last sequence changed; `advanced`:
  // the offset moved (which restarts the max_lag window).
  void UpdateLag(bool advanced);

  Options options_;
  const EventKey key_;
  std::unique_ptr<Counters> counters_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> reconnect_{false};
  std::atomic<uint64_t> offset_{0};
  // The publisher's last sequence number as last heard of (0 before).
  std::atomic<uint64_t> publisher_seq_{0};
  // Steady-clock nanoseconds since which the subscriber is behind without advancing; 0 when it
  // is not behind.
  std::atomic<int64_t> behind_since_ns_{0};
  std::atomic<bool> stranded_{false};
  // Steady-clock nanoseconds of the last verified message received from the bus.
  std::atomic<int64_t> last_receive_ns_{0};
  Wakeup receiver_wakeup_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BusMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool overflowed_ ABSL_GUARDED_BY(mu_) = false;
  // The receiver has subscribed (or given up connecting); the first replay waits for it.
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  // The EventLog call in flight, cancelled by Stop().
  grpc::ClientContext* active_call_ ABSL_GUARDED_BY(mu_) = nullptr;

  std::thread receiver_;
  std::thread applier_;
};

}  // namespace submarine::events
