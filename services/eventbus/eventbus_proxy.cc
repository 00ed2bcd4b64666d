#include "services/eventbus/eventbus_proxy.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/status/status.h"

namespace submarine::eventbus {
namespace {

constexpr char kDefaultFrontend[] = "tcp://127.0.0.1:5561";
constexpr char kDefaultBackend[] = "tcp://127.0.0.1:5562";
constexpr int kDefaultHwm = 100000;
constexpr int kMaxBurst = 1000;  // messages moved per direction before polling again

// Moves one whole message from `from` to `to` without blocking. False if none was waiting. If
// `to` refuses the first frame the message is dropped (a PUB-side drop the subscriber repairs).
bool ForwardOne(zmq::socket_t& from, zmq::socket_t& to) {
  zmq::message_t part;
  if (!from.recv(part, zmq::recv_flags::dontwait)) return false;
  bool sending = true;
  for (;;) {
    bool more = part.more();
    if (sending) {
      auto flags = zmq::send_flags::dontwait;
      if (more) flags = flags | zmq::send_flags::sndmore;
      sending = to.send(part, flags).has_value();
    }
    if (!more) return true;
    // The remaining frames of a message arrive together with its first one.
    (void)from.recv(part, zmq::recv_flags::none);
  }
}

}  // namespace

EventbusProxy::EventbusProxy(submarine::config::v1::EventbusConfig config)
    : config_(std::move(config)), endpoints_(absl::FailedPreconditionError("not bound")) {}

EventbusProxy::~EventbusProxy() { Stop(); }

absl::StatusOr<EventbusProxy::Endpoints> EventbusProxy::Bind() {
  if (thread_.joinable()) return endpoints_;
  stop_ = false;
  std::promise<absl::StatusOr<Endpoints>> bound;
  auto result = bound.get_future();
  thread_ = std::thread([this, p = std::move(bound)]() mutable { Run(std::move(p)); });
  endpoints_ = result.get();
  if (!endpoints_.ok()) thread_.join();
  return endpoints_;
}

absl::Status EventbusProxy::Start() { return Bind().status(); }

void EventbusProxy::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  wakeup_.Signal();
  thread_.join();
}

bool EventbusProxy::Healthy() const { return running_.load(); }

void EventbusProxy::Run(std::promise<absl::StatusOr<Endpoints>> bound) {
  auto log = log::Get("eventbus");
  const std::string frontend_at =
      config_.frontend().empty() ? kDefaultFrontend : config_.frontend();
  const std::string backend_at = config_.backend().empty() ? kDefaultBackend : config_.backend();
  const int hwm = config_.hwm() ? static_cast<int>(config_.hwm()) : kDefaultHwm;
  auto& ctx = events::ProcessContext();
  zmq::socket_t frontend(ctx, zmq::socket_type::xsub);
  zmq::socket_t backend(ctx, zmq::socket_type::xpub);
  Endpoints endpoints;
  std::string binding = frontend_at;
  try {
    for (auto* s : {&frontend, &backend}) {
      s->set(zmq::sockopt::sndhwm, hwm);
      s->set(zmq::sockopt::rcvhwm, hwm);
      s->set(zmq::sockopt::linger, 0);
    }
    frontend.bind(frontend_at);
    endpoints.frontend = frontend.get(zmq::sockopt::last_endpoint);
    binding = backend_at;
    backend.bind(backend_at);
    endpoints.backend = backend.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    frontend.close();
    backend.close();
    bound.set_value(
        Unavailable(absl::StrCat("cannot bind the event bus to ", binding, ": ", e.what())));
    return;
  }
  auto& reg = metrics::Registry::Global();
  auto* forwarded = reg.GetCounter("submarine_eventbus_forwarded_total",
                                   "Messages forwarded from publishers to subscribers");
  auto* subscriptions = reg.GetCounter("submarine_eventbus_subscriptions_total",
                                       "Subscription messages forwarded to publishers");
  running_ = true;
  bound.set_value(endpoints);
  log->info("event bus: publishers connect to {}, subscribers to {} (hwm {})", endpoints.frontend,
            endpoints.backend, hwm);

  while (!stop_) {
    zmq_pollitem_t items[] = {{frontend.handle(), 0, ZMQ_POLLIN, 0},
                              {backend.handle(), 0, ZMQ_POLLIN, 0},
                              wakeup_.PollItem()};
    try {
      zmq::poll(items, 3, std::chrono::milliseconds(-1));
      if (items[2].revents & ZMQ_POLLIN) wakeup_.Drain();
      if (items[0].revents & ZMQ_POLLIN) {
        int n = 0;
        while (n < kMaxBurst && ForwardOne(frontend, backend)) ++n;
        forwarded->Inc(n);
        forwarded_ += n;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        int n = 0;
        while (n < kMaxBurst && ForwardOne(backend, frontend)) ++n;
        subscriptions->Inc(n);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      log->error("event bus proxy failed: {}", e.what());
      break;
    }
  }
  running_ = false;
  frontend.close();
  backend.close();
  log->info("event bus stopped after forwarding {} messages", forwarded_.load());
}

}  // namespace submarine::eventbus
