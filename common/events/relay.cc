#include "common/events/relay.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/db/leader.h"
#include "common/events/outbox_store.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/status/status.h"

namespace submarine::events {
namespace {

using submarine::common::v1::Event;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr uint32_t kDefaultHeartbeatMs = 1000;
constexpr uint32_t kDefaultSendHwm = 100000;
constexpr uint32_t kDefaultBatch = 500;
constexpr int kLingerMs = 500;
constexpr size_t kResendPageBytes = 4 << 20;
constexpr auto kMinBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

// Blocks until `wakeup` is signalled or `timeout` elapses.
void Sleep(Wakeup& wakeup, std::chrono::milliseconds timeout) {
  zmq_pollitem_t item = wakeup.PollItem();
  try {
    zmq::poll(&item, 1, timeout);
  } catch (const zmq::error_t&) {
    return;  // EINTR: a shorter wait is harmless
  }
  if (item.revents & ZMQ_POLLIN) wakeup.Drain();
}

// Wakes the relay when AppendToOutbox committed a row in this relay's schema.
class OutboxListener : public pqxx::notification_receiver {
 public:
  OutboxListener(pqxx::connection_base& conn, std::string schema)
      : pqxx::notification_receiver(conn, kOutboxChannel), schema_(std::move(schema)) {}

  void operator()(const std::string& payload, int) override {
    if (payload == schema_) notified_ = true;
  }
  // Whether a notification arrived since the last call.
  bool Take() { return std::exchange(notified_, false); }

 private:
  std::string schema_;
  bool notified_ = false;
};

// The LISTEN side: a dedicated connection, reopened lazily when it breaks (the poll fallback
// keeps the relay going meanwhile). Owned by the relay thread.
class OutboxWaiter {
 public:
  OutboxWaiter(std::string conninfo, std::string schema)
      : conninfo_(std::move(conninfo)), schema_(std::move(schema)) {}

  ~OutboxWaiter() { Close(); }

  // Blocks until a row of this schema was committed, `wakeup` was signalled or `timeout`
  // elapsed. Connection trouble only shortens the wait.
  void Wait(Wakeup& wakeup, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    EnsureConnected();
    for (;;) {
      if (conn_ && Consume()) return;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return;
      std::vector<zmq_pollitem_t> items = {wakeup.PollItem()};
      if (conn_) items.push_back(zmq_pollitem_t{nullptr, conn_->sock(), ZMQ_POLLIN, 0});
      try {
        zmq::poll(items, left);
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) return;
      }
      if (items[0].revents & ZMQ_POLLIN) {
        wakeup.Drain();
        return;
      }
    }
  }

 private:
  void EnsureConnected() {
    if (conn_) return;
    try {
      conn_ = std::make_unique<pqxx::connection>(conninfo_);
      listener_ = std::make_unique<OutboxListener>(*conn_, schema_);
    } catch (const std::exception& e) {
      log::Get("events")->warn("relay cannot LISTEN ({}); polling every interval", e.what());
      Close();
    }
  }

  // Reads pending notifications; true if one was for this schema.
  bool Consume() {
    try {
      conn_->get_notifs();
      return listener_->Take();
    } catch (const std::exception& e) {
      log::Get("events")->warn("relay LISTEN connection lost: {}", e.what());
      Close();
      return false;
    }
  }

  void Close() {
    listener_.reset();
    conn_.reset();
  }

  std::string conninfo_;
  std::string schema_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<OutboxListener> listener_;
};

// The relay loop's state; lives on the relay thread only.
class RelayLoop {
 public:
  RelayLoop(const OutboxRelay::Options& options, std::atomic<bool>& stop,
            std::atomic<bool>& leading, std::atomic<bool>& healthy, std::atomic<uint64_t>& sent_seq,
            Wakeup& wakeup)
      : o_(options),
        stop_(stop),
        leading_(leading),
        healthy_(healthy),
        sent_seq_(sent_seq),
        wakeup_(wakeup),
        log_(log::Get("events")),
        heartbeat_(o_.events.heartbeat_ms() ? o_.events.heartbeat_ms() : kDefaultHeartbeatMs),
        batch_(o_.events.relay_batch() ? o_.events.relay_batch() : kDefaultBatch),
        key_(o_.secret, o_.publisher),
        waiter_(o_.conninfo, o_.schema) {
    std::string labels = absl::StrCat("publisher=\"", o_.publisher, "\"");
    auto& reg = metrics::Registry::Global();
    published_ = reg.GetCounter("submarine_events_published_total",
                                "Events sent to the event bus by the outbox relay", labels);
    resent_ = reg.GetCounter("submarine_events_resent_total",
                             "Sequenced events re-sent after a relay restart or failure", labels);
    heartbeats_ = reg.GetCounter("submarine_events_heartbeats_total",
                                 "Heartbeats sent by the outbox relay", labels);
    last_seq_gauge_ = reg.GetGauge("submarine_events_relay_last_seq",
                                   "Last sequence number assigned by the outbox relay", labels);
    lag_ms_ =
        reg.GetGauge("submarine_events_relay_lag_ms",
                     "Outbox insert to send delay of the newest event of the last batch", labels);
  }

  void Run() {
    if (!o_.events.publish_endpoint().empty()) {
      try {
        OpenSocket();
      } catch (const zmq::error_t& e) {
        // Sequencing goes on (the EventLog serves every event); the bus gets nothing, so the
        // relay reports itself unhealthy.
        log_->error("outbox relay of {} cannot connect to {}: {}", o_.publisher,
                    o_.events.publish_endpoint(), e.what());
        socket_.reset();
        healthy_ = false;
      }
    }
    db::LeaderLock leader(o_.conninfo, "events.relay." + o_.schema);
    bool resend_needed = true;
    auto backoff = kMinBackoff;
    SteadyTime next_lead_check{};
    last_send_ = std::chrono::steady_clock::now();
    while (!stop_) {
      auto now = std::chrono::steady_clock::now();
      if (!leading_ || now >= next_lead_check) {
        bool lead = leader.TryLead();
        if (lead && !leading_) resend_needed = true;
        leading_ = lead;
        next_lead_check = now + o_.poll_interval;
      }
      if (!leading_) {
        Sleep(wakeup_, o_.poll_interval);
        continue;
      }
      size_t sequenced = 0;
      absl::Status st = resend_needed ? Resend() : absl::OkStatus();
      if (st.ok()) {
        resend_needed = false;
        st = SequenceAndSend(&sequenced);
      }
      if (!st.ok()) {
        log_->warn("outbox relay of {}: {}; retrying in {} ms", o_.publisher, Message(st),
                   backoff.count());
        resend_needed = true;
        waiter_.Wait(wakeup_, backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      backoff = kMinBackoff;
      if (sequenced >= batch_) continue;  // more rows are probably waiting
      // Rows committed after this batch was taken have their NOTIFY pending: the wait below
      // returns at once for them.
      auto since_send = std::chrono::steady_clock::now() - last_send_;
      if (since_send >= heartbeat_) {
        // Idle: record the send high-water mark (busy batches piggyback it on sequencing).
        if (marked_ < sent_) {
          st = o_.pool->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
            OutboxStore::MarkPublished(tx, o_.publisher, sent_);
            return absl::OkStatus();
          });
          if (st.ok()) marked_ = sent_;
        }
        SendBeat();
        since_send = std::chrono::milliseconds(0);
      }
      auto until_beat =
          std::chrono::duration_cast<std::chrono::milliseconds>(heartbeat_ - since_send);
      waiter_.Wait(wakeup_, std::clamp(until_beat, std::chrono::milliseconds(1), o_.poll_interval));
    }
    if (socket_) socket_->close();
    leading_ = false;
  }

 private:
  void OpenSocket() {
    socket_ = std::make_unique<zmq::socket_t>(ProcessContext(), zmq::socket_type::pub);
    socket_->set(zmq::sockopt::sndhwm,
                 static_cast<int>(o_.events.send_hwm() ? o_.events.send_hwm() : kDefaultSendHwm));
    socket_->set(zmq::sockopt::linger, kLingerMs);
    socket_->set(zmq::sockopt::heartbeat_ivl, 1000);
    socket_->set(zmq::sockopt::heartbeat_timeout, 3000);
    socket_->connect(o_.events.publish_endpoint());
  }

  // Re-sends events that have a sequence number but may never have been sent (the crash window
  // between the sequencing commit and the send), then records them as published.
  absl::Status Resend() {
    OutboxCursor cursor;
    SUBMARINE_RETURN_IF_ERROR(o_.pool->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
      OutboxStore::EnsureCursor(tx, o_.publisher);
      cursor = OutboxStore::ReadCursor(tx, o_.publisher);
      return absl::OkStatus();
    }));
    last_assigned_ = cursor.last_seq;
    last_seq_gauge_->Set(static_cast<int64_t>(last_assigned_));
    marked_ = cursor.published_seq;
    if (!socket_) return absl::OkStatus();
    const uint64_t first_unsent = std::max(cursor.published_seq, sent_);
    uint64_t after = first_unsent;
    while (after < cursor.last_seq && !stop_) {
      std::vector<Event> page;
      SUBMARINE_RETURN_IF_ERROR(o_.pool->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
        page = OutboxStore::ReadEvents(tx, o_.publisher, after, cursor.last_seq, batch_,
                                       kResendPageBytes);
        return absl::OkStatus();
      }));
      if (page.empty()) break;
      SUBMARINE_RETURN_IF_ERROR(Send(page));
      resent_->Inc(page.size());
      after = page.back().header().seq();
    }
    if (after > first_unsent) {
      log_->info("outbox relay of {} re-sent events {}..{}", o_.publisher, first_unsent + 1, after);
    }
    if (sent_ < after) sent_ = after;
    return absl::OkStatus();
  }

  absl::Status SequenceAndSend(size_t* sequenced) {
    std::vector<Event> events;
    uint64_t mark = sent_ > marked_ ? sent_ : 0;
    SUBMARINE_RETURN_IF_ERROR(o_.pool->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
      events = OutboxStore::Sequence(tx, o_.publisher, batch_, mark);
      return absl::OkStatus();
    }));
    if (mark) marked_ = mark;
    *sequenced = events.size();
    if (events.empty()) return absl::OkStatus();
    last_assigned_ = events.back().header().seq();
    last_seq_gauge_->Set(static_cast<int64_t>(last_assigned_));
    if (!socket_) return absl::OkStatus();
    SUBMARINE_RETURN_IF_ERROR(Send(events));
    auto lag =
        std::chrono::system_clock::now() - FromTimestamp(events.back().header().occurred_at());
    lag_ms_->Set(std::chrono::duration_cast<std::chrono::milliseconds>(lag).count());
    return absl::OkStatus();
  }

  absl::Status Send(const std::vector<Event>& events) {
    try {
      for (const auto& e : events) {
        if (!absl::StartsWith(e.topic(), o_.topic_prefix)) {
          log_->error(
              "event {} has topic {} outside the publisher's prefix {}; subscribers "
              "receive it only by replay",
              e.header().seq(), e.topic(), o_.topic_prefix);
        }
        SendEvent(*socket_, e, key_);
        sent_ = std::max(sent_, e.header().seq());
      }
    } catch (const zmq::error_t& e) {
      return Unavailable(absl::StrCat("sending to the event bus failed: ", e.what()));
    }
    sent_seq_ = sent_;
    published_->Inc(events.size());
    last_send_ = std::chrono::steady_clock::now();
    return absl::OkStatus();
  }

  void SendBeat() {
    last_send_ = std::chrono::steady_clock::now();
    if (!socket_) return;
    try {
      SendHeartbeat(*socket_, o_.topic_prefix, key_, last_assigned_,
                    std::chrono::system_clock::now());
      heartbeats_->Inc();
    } catch (const zmq::error_t& e) {
      log_->warn("heartbeat of {} not sent: {}", o_.publisher, e.what());
    }
  }

  const OutboxRelay::Options& o_;
  std::atomic<bool>& stop_;
  std::atomic<bool>& leading_;
  std::atomic<bool>& healthy_;
  std::atomic<uint64_t>& sent_seq_;
  Wakeup& wakeup_;
  std::shared_ptr<spdlog::logger> log_;
  const std::chrono::milliseconds heartbeat_;
  const uint32_t batch_;
  const EventKey key_;
  OutboxWaiter waiter_;
  std::unique_ptr<zmq::socket_t> socket_;
  uint64_t last_assigned_ = 0;  // last sequence number known to be assigned
  uint64_t sent_ = 0;           // every event up to here was sent by this relay
  uint64_t marked_ = 0;         // outbox_cursor.published_seq as last written or read
  SteadyTime last_send_{};
  metrics::Counter* published_;
  metrics::Counter* resent_;
  metrics::Counter* heartbeats_;
  metrics::Gauge* last_seq_gauge_;
  metrics::Gauge* lag_ms_;
};

}  // namespace

OutboxRelay::OutboxRelay(Options options) : options_(std::move(options)) {}

OutboxRelay::~OutboxRelay() { Stop(); }

std::string OutboxRelay::TaskName() const {
  return absl::StrCat("outbox-relay(", options_.publisher, ")");
}

absl::Status OutboxRelay::Start() {
  if (options_.publisher.empty() || options_.topic_prefix.empty() || options_.conninfo.empty() ||
      options_.schema.empty() || options_.pool == nullptr) {
    return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_RELAY_OPTIONS",
                     "the outbox relay needs publisher, topic_prefix, conninfo, schema and pool");
  }
  if (!options_.events.publish_endpoint().empty() && options_.secret.size() < kMinSecretBytes) {
    // Unsigned events would be dropped by every subscriber: refuse rather than publish noise.
    return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_RELAY_OPTIONS",
                     "the outbox relay needs the internal secret (server.gateway_secret_file) to "
                     "sign what it sends to events.publish_endpoint");
  }
  if (thread_.joinable()) return absl::OkStatus();
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void OutboxRelay::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  wakeup_.Signal();
  thread_.join();
}

void OutboxRelay::Run() {
  RelayLoop loop(options_, stop_, leading_, healthy_, sent_seq_, wakeup_);
  loop.Run();
}

}  // namespace submarine::events
