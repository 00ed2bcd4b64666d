#include "common/events/change_watcher.h"

#include <iterator>
#include <optional>
#include <vector>
#include <zmq_addon.hpp>

#include "absl/strings/str_cat.h"
#include "common/events/wire.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::events {
namespace {

// The receiver polls with this timeout so Stop() is noticed promptly: the header has no wakeup
// fd, and a watcher's socket carries little traffic.
constexpr auto kPoll = std::chrono::milliseconds(100);
// Pause before re-creating a socket whose endpoint was refused.
constexpr auto kRetry = std::chrono::milliseconds(500);
constexpr int kMaxDrain = 1000;

}  // namespace

ChangeWatcher::ChangeWatcher(Options options) : options_(std::move(options)) {}

ChangeWatcher::~ChangeWatcher() { Stop(); }

std::string ChangeWatcher::TaskName() const {
  return absl::StrCat("change-watcher(", options_.name, ")");
}

absl::Status ChangeWatcher::Start() {
  if (options_.subscribe_endpoint.empty()) {
    return InvalidField("subscribe_endpoint", "the change watcher needs the bus' XPUB endpoint");
  }
  if (options_.topic_prefix.empty()) {
    return InvalidField("topic_prefix", "the change watcher needs a topic prefix");
  }
  if (options_.publisher.empty()) {
    return InvalidField("publisher", "the change watcher needs the publisher it listens to");
  }
  if (options_.secret.size() < kMinSecretBytes) {
    return InvalidField("secret",
                        "the change watcher needs the internal secret "
                        "(server.gateway_secret_file) to verify the publisher's events");
  }
  if (thread_.joinable()) return absl::OkStatus();
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void ChangeWatcher::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
}

// The receiver thread owns the SUB socket from creation to close. One iteration of the outer
// loop is one connection; every new connection starts with on_resync(), since whatever happened
// while it was not subscribed is unknown.
void ChangeWatcher::Loop() {
  auto log = log::Get("events");
  const auto& o = options_;
  const EventKey key(o.secret, o.publisher);
  RejectedMessages rejected(o.name, o.publisher);
  auto resync = [&](const char* why) {
    log->debug("change watcher {}: resync ({})", o.name, why);
    if (o.on_resync) o.on_resync();
  };
  bool first_connection = true;
  while (!stop_) {
    zmq::socket_t socket(ProcessContext(), zmq::socket_type::sub);
    try {
      socket.set(zmq::sockopt::linger, 0);
      socket.set(zmq::sockopt::heartbeat_ivl, 1000);
      socket.set(zmq::sockopt::heartbeat_timeout, 3000);
      socket.connect(o.subscribe_endpoint);
      socket.set(zmq::sockopt::subscribe, o.topic_prefix);
    } catch (const zmq::error_t& e) {
      // A malformed endpoint never delivers anything; callers still expire answers by TTL.
      log->error("change watcher {} cannot connect to {}: {}", o.name, o.subscribe_endpoint,
                 e.what());
      socket.close();
      auto until = std::chrono::steady_clock::now() + kRetry;
      while (!stop_ && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(kPoll);  // an idle back-off, not a synchronisation
      }
      continue;
    }
    resync(first_connection ? "start" : "reconnected");
    first_connection = false;

    // Last seq seen on this connection. The publisher may have published while the subscription
    // was still travelling to the bus, so its first message is a resync too.
    std::optional<uint64_t> last_seq;
    auto last_message = std::chrono::steady_clock::now();
    bool reconnect = false;
    while (!stop_ && !reconnect) {
      zmq_pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 1, kPoll);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        log->error("change watcher {} poll failed: {}; reconnecting", o.name, e.what());
        reconnect = true;
        continue;
      }
      if (!(items[0].revents & ZMQ_POLLIN)) {
        if (std::chrono::steady_clock::now() - last_message > o.silence_timeout) {
          log->warn("change watcher {}: nothing from {} for {} ms; reconnecting", o.name,
                    o.subscribe_endpoint, o.silence_timeout.count());
          reconnect = true;  // the next connection starts with a resync
        }
        continue;
      }
      try {
        for (int i = 0; i < kMaxDrain && !stop_; ++i) {
          std::vector<zmq::message_t> frames;
          if (!zmq::recv_multipart(socket, std::back_inserter(frames),
                                   zmq::recv_flags::dontwait)) {
            break;
          }
          auto msg = ParseBusMessage(frames, o.topic_prefix, key);
          if (!msg.ok()) {
            rejected.Reject(msg.status());
            continue;
          }
          last_message = std::chrono::steady_clock::now();
          if (msg->heartbeat) {
            const uint64_t announced = msg->beat.last_seq();
            if (!last_seq) {
              last_seq = announced;
              resync("first heartbeat");
            } else if (announced > *last_seq) {
              // Events were announced that never reached us. (A heartbeat behind what we saw
              // comes from a replica that is not the relay leader, and says nothing new.)
              last_seq = announced;
              resync("heartbeat ahead of the events seen");
            }
            continue;
          }
          const auto& header = msg->event.header();
          if (!last_seq) {
            last_seq = header.seq();
            resync("first event");
          } else {
            if (header.seq() <= *last_seq) continue;  // already seen (a relay re-send)
            if (header.seq() != *last_seq + 1) resync("sequence gap");
            last_seq = header.seq();
          }
          if (o.on_change) o.on_change(msg->event.topic(), header, msg->event.payload());
        }
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) {
          log->error("change watcher {} receive failed: {}; reconnecting", o.name, e.what());
          reconnect = true;
        }
      }
    }
    socket.close();
  }
}

}  // namespace submarine::events
