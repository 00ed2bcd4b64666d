#pragma once
// The event bus wire format (ARCHITECTURE.md section 4) and the small ZeroMQ plumbing shared by
// the relay, the subscriber, the change watcher and the eventbus proxy.
//
// Every bus message has four frames: [topic][EventHeader][payload][mac]. The topic is the
// payload's fully qualified message name, so subscriptions are prefix matches on a publisher's
// package. A heartbeat is [<prefix>Heartbeat][EventHeader{publisher, seq=0, occurred_at}]
// [Heartbeat][mac].
//
// Events are authenticated end to end, so that only a publisher's own relay can publish under
// its name (anyone who reaches the bus' ports can send frames):
//   K_p = HMAC-SHA-256(internal secret, "submarine-events-v1\n" + publisher)
//   mac = HMAC-SHA-256(K_p, be64(|topic|) || topic || be64(|header|) || header || payload)
// where the internal secret is the one every Submarine process holds
// (server.gateway_secret_file, auth::LoadInternalSecret), header is the EventHeader bytes exactly
// as in the second frame, and be64 is an 8-byte big-endian length. The header's length is in the
// MAC too, so no byte can move between header and payload under the same MAC. Events replayed
// through EventLog.ListEvents carry the same MAC in Event.mac, computed over the header's
// deterministic serialization (HeaderBytes), which is also what the relay sends.
// Receivers verify with the key of the one publisher they expect and drop anything else.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "common/metrics/metrics.h"
#include "submarine/common/v1/events.pb.h"

namespace submarine::events {

// Length of a MAC frame (HMAC-SHA-256).
inline constexpr size_t kMacBytes = 32;
// The shortest internal secret the event system accepts (what auth::LoadInternalSecret requires).
inline constexpr size_t kMinSecretBytes = 32;

// Reasons (ErrorInfo) of a bus message a receiver drops; also the `reason` label of
// submarine_events_rejected_total.
inline constexpr char kMalformedBusMessage[] = "MALFORMED_BUS_MESSAGE";
inline constexpr char kEventMacInvalid[] = "EVENT_MAC_INVALID";
inline constexpr char kEventWrongPublisher[] = "EVENT_WRONG_PUBLISHER";

// One publisher's key K_p (see above). Immutable and thread-safe.
class EventKey {
 public:
  // `secret` is the internal secret; the caller checks its length (kMinSecretBytes).
  EventKey(const std::string& secret, std::string publisher);

  const std::string& publisher() const { return publisher_; }
  // The MAC of one message (32 bytes).
  std::string Mac(std::string_view topic, std::string_view header, std::string_view payload) const;
  // Whether `mac` is the MAC of the message (constant-time comparison).
  bool Verify(std::string_view topic, std::string_view header, std::string_view payload,
              std::string_view mac) const;

 private:
  std::string publisher_;
  std::string key_;
};

// The topic of a publisher's heartbeats, "<prefix>Heartbeat".
std::string HeartbeatTopic(const std::string& topic_prefix);

// The deterministic serialization of a header: what the relay sends as the second frame and
// what Event.mac covers.
std::string HeaderBytes(const submarine::common::v1::EventHeader& header);

// Sets event->mac (the publisher's MAC of its topic, header and payload), as EventLog serves it.
void SignEvent(const EventKey& key, submarine::common::v1::Event* event);
// Whether event.mac verifies under `key` and the header names key.publisher(): how a subscriber
// checks a replayed event before applying it.
bool VerifyEvent(const EventKey& key, const submarine::common::v1::Event& event);

// The process-wide ZeroMQ context (one per process, as the ZeroMQ Guide asks). It is never
// destroyed, so a socket that outlives main() cannot hang the exit; every socket must still be
// closed (with a short linger) by the thread that owns it. Thread-safe.
zmq::context_t& ProcessContext();

// Sends `event` as [topic][EventHeader][payload][mac], the MAC computed with `key` (event.mac is
// not used), without blocking. False if the socket refused the message (EAGAIN); a PUB socket at
// its high-water mark drops silently and returns true. Throws zmq::error_t on socket errors,
// like cppzmq.
bool SendEvent(zmq::socket_t& socket, const submarine::common::v1::Event& event,
               const EventKey& key);

// Sends a heartbeat of key.publisher() carrying `last_seq` on HeartbeatTopic(topic_prefix). Same
// contract as SendEvent.
bool SendHeartbeat(zmq::socket_t& socket, const std::string& topic_prefix, const EventKey& key,
                   uint64_t last_seq, std::chrono::system_clock::time_point now);

// A verified message read off the bus: either an event or a heartbeat.
struct BusMessage {
  bool heartbeat = false;
  submarine::common::v1::Event event;     // when !heartbeat (event.mac is not kept)
  submarine::common::v1::Heartbeat beat;  // when heartbeat
};

// Verifies and parses the frames of one bus message of key.publisher(). Errors (all
// INVALID_ARGUMENT, the reason says which): kMalformedBusMessage unless there are four frames
// whose header (and heartbeat payload) parse; kEventMacInvalid if the MAC does not verify under
// `key` (checked before anything is parsed); kEventWrongPublisher if a verified message names
// another publisher in its header or heartbeat. Messages are returned only if verified.
absl::StatusOr<BusMessage> ParseBusMessage(const std::vector<zmq::message_t>& frames,
                                           const std::string& topic_prefix, const EventKey& key);

// What a receiver does with a bus message it drops: counts it in
// submarine_events_rejected_total{subscriber, publisher, reason} and logs it at warning level at
// most once per 10 s (with how many were dropped meanwhile), so a flood of forgeries cannot
// flood the log. Used by one thread; total() from any thread.
class RejectedMessages {
 public:
  RejectedMessages(std::string receiver, std::string publisher);
  // `why` is a ParseBusMessage (or replay verification) error.
  void Reject(const absl::Status& why);
  uint64_t total() const { return total_.load(); }

 private:
  std::string receiver_;
  std::string publisher_;
  std::map<std::string, metrics::Counter*> counters_;  // by reason
  std::atomic<uint64_t> total_{0};
  uint64_t unlogged_ = 0;
  std::chrono::steady_clock::time_point next_log_{};
};

// An eventfd that wakes a thread blocked in zmq::poll (listed as a raw fd item). Signal() is
// thread-safe and async-signal-safe; Drain() is called by the waiting thread.
class Wakeup {
 public:
  Wakeup();
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  int fd() const { return fd_; }
  void Signal();
  void Drain();
  // A poll item for this fd.
  zmq_pollitem_t PollItem() const { return zmq_pollitem_t{nullptr, fd_, ZMQ_POLLIN, 0}; }

 private:
  int fd_;
};

// Converts between a Timestamp and a system_clock time point (microsecond precision).
std::chrono::system_clock::time_point FromTimestamp(const google::protobuf::Timestamp& ts);
void ToTimestamp(std::chrono::system_clock::time_point t, google::protobuf::Timestamp* ts);

}  // namespace submarine::events
