#pragma once
// ChangeWatcher: a lightweight, database-free listener for "something changed" on one
// publisher's stream, for in-memory caches (the gateway's token state, common/authz's permission
// cache). It subscribes a SUB socket to the publisher's topic prefix on the bus and calls
// `on_change(event)` for every event, and `on_resync()` whenever it may have missed some: at
// start, after a sequence gap, when a heartbeat announces a seq it has not seen, after silence
// longer than silence_timeout (it then reconnects), and after the bus comes back. Callers react
// to on_resync by dropping or re-fetching everything, so a lost message can only delay freshness,
// never leave a cache stale for good.
//
// Only the publisher's own messages count: each is verified with the key of `publisher` derived
// from `secret` (wire.h). A message that fails verification, has another frame count or names
// another publisher is dropped before anything else looks at it (no callback, no resync, and the
// silence timer keeps running) and counted in
// submarine_events_rejected_total{subscriber = name, publisher, reason}, logged at most every
// 10 s.
//
// Threads: one receiver thread, started by Start() and joined by Stop(); callbacks run on it.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/rpc/server_runner.h"
#include "submarine/common/v1/events.pb.h"

namespace submarine::events {

class ChangeWatcher : public rpc::BackgroundTask {
 public:
  struct Options {
    std::string name;                // for logs and metrics, e.g. "gateway.auth"
    std::string publisher;           // whose stream, e.g. "permission"
    std::string subscribe_endpoint;  // the bus' XPUB endpoint
    std::string topic_prefix;        // e.g. "submarine.permission.v1."
    // The internal secret every Submarine process holds (server.gateway_secret_file, loaded with
    // auth::LoadInternalSecret), at least kMinSecretBytes.
    std::string secret;
    // Called for each event (topic, header, payload) in arrival order.
    std::function<void(const std::string& topic, const submarine::common::v1::EventHeader& header,
                       const std::string& payload)>
        on_change;
    // Called when events may have been missed (see above), including once right after Start().
    std::function<void()> on_resync;
    // No message (event or heartbeat) for this long: resync and reconnect.
    std::chrono::milliseconds silence_timeout{5000};
  };

  explicit ChangeWatcher(Options options);
  ~ChangeWatcher() override;  // Stop()s

  std::string TaskName() const override;
  // INVALID_ARGUMENT (naming the option) if the endpoint, prefix or publisher is missing or the
  // secret too short; otherwise starts the receiver thread.
  absl::Status Start() override;
  void Stop() override;
  // Always true: a silent bus only delays invalidation (callers bound staleness by TTL).
  bool Healthy() const override { return true; }

 private:
  void Loop();
  Options options_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace submarine::events
