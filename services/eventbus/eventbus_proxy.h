#pragma once
// EventbusProxy: the event bus itself, a stateless ZeroMQ proxy. Publishers' PUB sockets connect
// to its XSUB frontend, subscribers' SUB sockets to its XPUB backend; messages flow frontend →
// backend and subscriptions backend → frontend (so filtering happens at the publishers). It
// stores nothing: durability lives in each publisher's outbox, and subscribers repair whatever
// is lost here (a restart, a full HWM) by replay. Both sides have explicit high-water marks; the
// XPUB side drops for a subscriber at its HWM rather than stall every other subscriber.
//
// One thread, started by Bind(), creates, binds, uses and closes both sockets.
// Metrics: submarine_eventbus_forwarded_total (messages to subscribers),
// submarine_eventbus_subscriptions_total (subscription messages to publishers).
// Thread-safety: Bind()/Start()/Stop() from one controlling thread; accessors from any thread.

#include <atomic>
#include <future>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/events/wire.h"
#include "common/rpc/server_runner.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::eventbus {

class EventbusProxy : public rpc::BackgroundTask {
 public:
  struct Endpoints {
    std::string frontend;  // XSUB, e.g. "tcp://127.0.0.1:5561" (the actual port if 0 was asked)
    std::string backend;   // XPUB
  };

  // Empty frontend/backend default to tcp://127.0.0.1:5561 and :5562; hwm 0 means 100000.
  explicit EventbusProxy(submarine::config::v1::EventbusConfig config);
  ~EventbusProxy() override;  // Stop()s

  // Starts the proxy thread, which binds both sockets and starts forwarding; returns the bound
  // endpoints, or UNAVAILABLE naming the endpoint that could not be bound. Idempotent.
  absl::StatusOr<Endpoints> Bind();

  std::string TaskName() const override { return "eventbus-proxy"; }
  // Bind()s if not bound yet.
  absl::Status Start() override;
  // Stops forwarding, closes both sockets (linger 0: nothing is stored) and joins. Idempotent.
  void Stop() override;
  // False once the proxy thread has died.
  bool Healthy() const override;

  uint64_t forwarded() const { return forwarded_.load(); }

 private:
  void Run(std::promise<absl::StatusOr<Endpoints>> bound);

  submarine::config::v1::EventbusConfig config_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> forwarded_{0};
  events::Wakeup wakeup_;
  std::thread thread_;
  absl::StatusOr<Endpoints> endpoints_;
};

}  // namespace submarine::eventbus
