#include "common/events/wire.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::events {
namespace {

using submarine::common::v1::Event;
using submarine::common::v1::EventHeader;
using submarine::common::v1::Heartbeat;

bool SendFrames(zmq::socket_t& socket, const std::string& topic, const std::string& header,
                const std::string& payload) {
  constexpr auto kMore = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
  if (!socket.send(zmq::buffer(topic), kMore)) return false;
  // Once the first frame is queued the rest of the message is queued atomically with it.
  socket.send(zmq::buffer(header), kMore);
  socket.send(zmq::buffer(payload), zmq::send_flags::dontwait);
  return true;
}

}  // namespace

std::string HeartbeatTopic(const std::string& topic_prefix) { return topic_prefix + "Heartbeat"; }

zmq::context_t& ProcessContext() {
  static zmq::context_t* context = new zmq::context_t(1);
  return *context;
}

bool SendEvent(zmq::socket_t& socket, const Event& event) {
  return SendFrames(socket, event.topic(), event.header().SerializeAsString(), event.payload());
}

bool SendHeartbeat(zmq::socket_t& socket, const std::string& topic_prefix,
                   const std::string& publisher, uint64_t last_seq,
                   std::chrono::system_clock::time_point now) {
  EventHeader header;
  header.set_publisher(publisher);
  ToTimestamp(now, header.mutable_occurred_at());
  Heartbeat beat;
  beat.set_publisher(publisher);
  beat.set_last_seq(last_seq);
  return SendFrames(socket, HeartbeatTopic(topic_prefix), header.SerializeAsString(),
                    beat.SerializeAsString());
}

absl::StatusOr<BusMessage> ParseBusMessage(const std::vector<zmq::message_t>& frames,
                                           const std::string& topic_prefix) {
  if (frames.size() != 3) {
    return MakeError(absl::StatusCode::kInvalidArgument, "MALFORMED_BUS_MESSAGE",
                     absl::StrCat("bus message has ", frames.size(), " frames, want 3"));
  }
  BusMessage out;
  std::string topic = frames[0].to_string();
  if (topic == HeartbeatTopic(topic_prefix)) {
    out.heartbeat = true;
    if (!out.beat.ParseFromArray(frames[2].data(), static_cast<int>(frames[2].size()))) {
      return MakeError(absl::StatusCode::kInvalidArgument, "MALFORMED_BUS_MESSAGE",
                       "heartbeat payload does not parse");
    }
    return out;
  }
  if (!out.event.mutable_header()->ParseFromArray(frames[1].data(),
                                                  static_cast<int>(frames[1].size()))) {
    return MakeError(absl::StatusCode::kInvalidArgument, "MALFORMED_BUS_MESSAGE",
                     absl::StrCat("event header of topic ", topic, " does not parse"));
  }
  out.event.set_topic(std::move(topic));
  out.event.set_payload(frames[2].to_string());
  return out;
}

Wakeup::Wakeup() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0) std::abort();  // out of file descriptors at construction: nothing sane to do
}

Wakeup::~Wakeup() { ::close(fd_); }

void Wakeup::Signal() {
  uint64_t one = 1;
  while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void Wakeup::Drain() {
  uint64_t value;
  while (::read(fd_, &value, sizeof value) > 0 || errno == EINTR) {
  }
}

std::chrono::system_clock::time_point FromTimestamp(const google::protobuf::Timestamp& ts) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(ts.seconds()) + std::chrono::nanoseconds(ts.nanos())));
}

void ToTimestamp(std::chrono::system_clock::time_point t, google::protobuf::Timestamp* ts) {
  int64_t micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  int64_t secs = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --secs;
  }
  ts->set_seconds(secs);
  ts->set_nanos(static_cast<int32_t>(rem * 1000));
}

}  // namespace submarine::events
