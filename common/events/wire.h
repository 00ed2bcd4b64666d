#pragma once
// The event bus wire format (ARCHITECTURE.md section 4) and the small ZeroMQ plumbing shared by
// the relay, the subscriber and the eventbus proxy.
//
// Every bus message has three frames: [topic][EventHeader][payload]. The topic is the payload's
// fully qualified message name, so subscriptions are prefix matches on a publisher's package.
// A heartbeat is [<prefix>Heartbeat][EventHeader{publisher, seq=0, occurred_at}][Heartbeat].

#include <chrono>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "submarine/common/v1/events.pb.h"

namespace submarine::events {

// The topic of a publisher's heartbeats, "<prefix>Heartbeat".
std::string HeartbeatTopic(const std::string& topic_prefix);

// The process-wide ZeroMQ context (one per process, as the ZeroMQ Guide asks). It is never
// destroyed, so a socket that outlives main() cannot hang the exit; every socket must still be
// closed (with a short linger) by the thread that owns it. Thread-safe.
zmq::context_t& ProcessContext();

// Sends `event` as [topic][EventHeader][payload] without blocking. False if the socket refused
// the message (EAGAIN); a PUB socket at its high-water mark drops silently and returns true.
// Throws zmq::error_t on socket errors, like cppzmq.
bool SendEvent(zmq::socket_t& socket, const submarine::common::v1::Event& event);

// Sends a heartbeat carrying `last_seq` on HeartbeatTopic(topic_prefix). Same contract as
// SendEvent.
bool SendHeartbeat(zmq::socket_t& socket, const std::string& topic_prefix,
                   const std::string& publisher, uint64_t last_seq,
                   std::chrono::system_clock::time_point now);

// A message read off the bus: either an event or a heartbeat.
struct BusMessage {
  bool heartbeat = false;
  submarine::common::v1::Event event;     // when !heartbeat
  submarine::common::v1::Heartbeat beat;  // when heartbeat
};

// Parses the frames of one bus message. INVALID_ARGUMENT if it does not have three frames or a
// frame does not parse.
absl::StatusOr<BusMessage> ParseBusMessage(const std::vector<zmq::message_t>& frames,
                                           const std::string& topic_prefix);

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
