#pragma once
// OutboxRelay: the publishing half of the transactional outbox (ARCHITECTURE.md section 4, the
// Clone pattern's server role for one publisher's stream).
//
// One thread, started by Start() and joined by Stop(), owns the PUB socket, the leader lock and
// the LISTEN connection. While this process holds the leader lock (db::LeaderLock named
// "events.relay.<schema>") it repeats:
//   1. in one transaction: take up to `relay_batch` unsequenced outbox rows in id order, give
//      them the next gapless sequence numbers of the publisher, advance outbox_cursor; COMMIT;
//   2. only then send each as [topic][EventHeader][payload][mac] to the bus' XSUB endpoint, the
//      MAC computed with the publisher's key derived from `secret` (wire.h);
//   3. record the send high-water mark (outbox_cursor.published_seq, in the next transaction).
// On taking the lead, and after any failure, it first re-sends every event with a sequence but
// above published_seq (the crash window "commit done, publish not done"). When idle it waits for
// AppendToOutbox's NOTIFY with a 1 s poll fallback and sends "<prefix>Heartbeat" carrying the
// last assigned sequence every heartbeat_ms (signed like events), so subscribers notice a lost tail
// and replay. Database errors are logged and retried with back-off; they never end the loop.
//
// The wire is lossy by design (PUB drops at its HWM, the bus can restart, subscribers join
// late); subscribers repair gaps by replaying from EventLog.ListEvents.
//
// Metrics (label publisher): submarine_events_published_total, submarine_events_resent_total,
// submarine_events_heartbeats_total, submarine_events_relay_last_seq,
// submarine_events_relay_lag_ms (insert → send of the newest event of the last batch).
//
// Thread-safety: Start()/Stop() from one controlling thread; the accessors from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "common/db/pool.h"
#include "common/events/wire.h"
#include "common/rpc/server_runner.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::events {

class OutboxRelay : public rpc::BackgroundTask {
 public:
  struct Options {
    std::string publisher;     // e.g. "environment"; topics must start with the prefix below
    std::string topic_prefix;  // e.g. "submarine.environment.v1."
    std::string conninfo;      // for the leader lock + LISTEN connection
    std::string schema;        // the service schema
    db::ConnectionPool* pool = nullptr;  // not owned
    // The internal secret every Submarine process holds (server.gateway_secret_file, loaded with
    // auth::LoadInternalSecret): this relay signs with the key it derives for `publisher`.
    // Required (at least kMinSecretBytes) when events.publish_endpoint is set.
    std::string secret;
    // publish_endpoint empty = assign seq but don't send.
    submarine::config::v1::EventsConfig events;
    // The fallback poll period when no NOTIFY arrives (and the leadership re-check period).
    std::chrono::milliseconds poll_interval{1000};
  };

  explicit OutboxRelay(Options options);
  ~OutboxRelay() override;  // Stop()s

  std::string TaskName() const override;
  // INVALID_ARGUMENT if the options are incomplete (or publish to a bus without a secret);
  // otherwise starts the thread and returns.
  absl::Status Start() override;
  // Finishes the current batch, closes the socket (linger 500 ms) and joins. Idempotent.
  void Stop() override;
  // False if the publish endpoint could not be connected (malformed address): events are then
  // sequenced and served by EventLog but never sent. Database trouble is retried, not reported.
  bool Healthy() const override { return healthy_.load(); }

  // Whether this relay currently holds the leader lock.
  bool leading() const { return leading_.load(); }
  // The highest sequence number this relay has sent (0 before the first send).
  uint64_t sent_seq() const { return sent_seq_.load(); }

 private:
  void Run();

  Options options_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> leading_{false};
  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> sent_seq_{0};
  Wakeup wakeup_;
  std::thread thread_;
};

}  // namespace submarine::events
