#include "common/events/wire.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::events {
namespace {

using submarine::common::v1::Event;
using submarine::common::v1::EventHeader;
using submarine::common::v1::Heartbeat;

constexpr char kKeyContext[] = "submarine-events-v1\n";
static_assert(kMacBytes == crypto_auth_hmacsha256_BYTES);
constexpr auto kRejectLogInterval = std::chrono::seconds(10);

void UpdateWithLength(crypto_auth_hmacsha256_state* state, std::string_view part) {
  unsigned char length[8];
  uint64_t n = part.size();
  for (int i = 7; i >= 0; --i, n >>= 8) length[i] = static_cast<unsigned char>(n & 0xff);
  crypto_auth_hmacsha256_update(state, length, sizeof length);
  crypto_auth_hmacsha256_update(state, reinterpret_cast<const unsigned char*>(part.data()),
                                part.size());
}

std::string_view View(const zmq::message_t& frame) {
  return std::string_view(static_cast<const char*>(frame.data()), frame.size());
}

bool SendFrames(zmq::socket_t& socket, const std::string& topic, const std::string& header,
                const std::string& payload, const std::string& mac) {
  constexpr auto kMore = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
  if (!socket.send(zmq::buffer(topic), kMore)) return false;
  // Once the first frame is queued the rest of the message is queued atomically with it.
  socket.send(zmq::buffer(header), kMore);
  socket.send(zmq::buffer(payload), kMore);
  socket.send(zmq::buffer(mac), zmq::send_flags::dontwait);
  return true;
}

absl::Status Malformed(const std::string& what) {
  return MakeError(absl::StatusCode::kInvalidArgument, kMalformedBusMessage, what);
}

}  // namespace

EventKey::EventKey(const std::string& secret, std::string publisher)
    : publisher_(std::move(publisher)),
      key_(auth::HmacSha256(secret, absl::StrCat(kKeyContext, publisher_))) {}

std::string EventKey::Mac(std::string_view topic, std::string_view header,
                          std::string_view payload) const {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key_.data()),
                              key_.size());
  UpdateWithLength(&state, topic);
  UpdateWithLength(&state, header);
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(payload.data()),
                                payload.size());
  std::string mac(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_final(&state, reinterpret_cast<unsigned char*>(mac.data()));
  return mac;
}

bool EventKey::Verify(std::string_view topic, std::string_view header, std::string_view payload,
                      std::string_view mac) const {
  return mac.size() == kMacBytes && auth::ConstantTimeEquals(Mac(topic, header, payload), mac);
}

std::string HeartbeatTopic(const std::string& topic_prefix) { return topic_prefix + "Heartbeat"; }

std::string HeaderBytes(const EventHeader& header) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    header.SerializeToCodedStream(&coded);
  }  // the coded stream flushes into `out` when it goes away
  return out;
}

void SignEvent(const EventKey& key, Event* event) {
  event->set_mac(key.Mac(event->topic(), HeaderBytes(event->header()), event->payload()));
}

bool VerifyEvent(const EventKey& key, const Event& event) {
  return event.header().publisher() == key.publisher() &&
         key.Verify(event.topic(), HeaderBytes(event.header()), event.payload(), event.mac());
}

zmq::context_t& ProcessContext() {
  static zmq::context_t* context = new zmq::context_t(1);
  return *context;
}

bool SendEvent(zmq::socket_t& socket, const Event& event, const EventKey& key) {
  std::string header = HeaderBytes(event.header());
  std::string mac = key.Mac(event.topic(), header, event.payload());
  return SendFrames(socket, event.topic(), header, event.payload(), mac);
}

bool SendHeartbeat(zmq::socket_t& socket, const std::string& topic_prefix, const EventKey& key,
                   uint64_t last_seq, std::chrono::system_clock::time_point now) {
  EventHeader header;
  header.set_publisher(key.publisher());
  ToTimestamp(now, header.mutable_occurred_at());
  Heartbeat beat;
  beat.set_publisher(key.publisher());
  beat.set_last_seq(last_seq);
  const std::string topic = HeartbeatTopic(topic_prefix);
  const std::string header_bytes = HeaderBytes(header);
  const std::string payload = beat.SerializeAsString();
  return SendFrames(socket, topic, header_bytes, payload, key.Mac(topic, header_bytes, payload));
}

absl::StatusOr<BusMessage> ParseBusMessage(const std::vector<zmq::message_t>& frames,
                                           const std::string& topic_prefix, const EventKey& key) {
  if (frames.size() != 4) {
    return Malformed(absl::StrCat("bus message has ", frames.size(), " frames, want 4"));
  }
  // Nothing of an unauthenticated message is parsed.
  if (!key.Verify(View(frames[0]), View(frames[1]), View(frames[2]), View(frames[3]))) {
    return MakeError(absl::StatusCode::kInvalidArgument, kEventMacInvalid,
                     absl::StrCat("bus message of topic ", QuoteInput(frames[0].to_string()),
                                  " does not verify under the key of ", key.publisher()),
                     {{"publisher", key.publisher()}});
  }
  BusMessage out;
  EventHeader header;
  if (!header.ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size()))) {
    return Malformed("the header of a verified bus message does not parse");
  }
  std::string topic = frames[0].to_string();
  if (topic == HeartbeatTopic(topic_prefix)) {
    out.heartbeat = true;
    if (!out.beat.ParseFromArray(frames[2].data(), static_cast<int>(frames[2].size()))) {
      return Malformed("the payload of a verified heartbeat does not parse");
    }
  }
  std::string named = header.publisher();
  if (out.heartbeat && named == key.publisher()) named = out.beat.publisher();
  if (named != key.publisher()) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, kEventWrongPublisher,
        absl::StrCat("a bus message signed for ", key.publisher(), " names ", QuoteInput(named)),
        {{"publisher", key.publisher()}});
  }
  if (!out.heartbeat) {
    *out.event.mutable_header() = std::move(header);
    out.event.set_topic(std::move(topic));
    out.event.set_payload(frames[2].to_string());
  }
  return out;
}

RejectedMessages::RejectedMessages(std::string receiver, std::string publisher)
    : receiver_(std::move(receiver)), publisher_(std::move(publisher)) {}

void RejectedMessages::Reject(const absl::Status& why) {
  google::rpc::ErrorInfo info;
  std::string reason = GetErrorInfo(why, &info) ? info.reason() : kMalformedBusMessage;
  auto& counter = counters_[reason];
  if (counter == nullptr) {
    counter = metrics::Registry::Global().GetCounter(
        "submarine_events_rejected_total",
        "Bus or replayed messages a receiver dropped because they failed verification",
        absl::StrCat("subscriber=\"", receiver_, "\",publisher=\"", publisher_, "\",reason=\"",
                     reason, "\""));
  }
  counter->Inc();
  ++total_;
  ++unlogged_;
  auto now = std::chrono::steady_clock::now();
  if (now < next_log_) return;
  next_log_ = now + kRejectLogInterval;
  log::Get("events")->warn(
      "{} dropped {} message(s) of {} that failed verification (forged, or a publisher with "
      "another internal secret); the last: {}",
      receiver_, std::exchange(unlogged_, 0), publisher_, Message(why));
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
