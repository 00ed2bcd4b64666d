#include "common/events/subscriber.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <vector>
#include <zmq_addon.hpp>

#include "absl/strings/str_cat.h"
#include "common/auth/principal.h"
#include "common/events/event_log_service.h"
#include "common/events/inbox_store.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "submarine/common/v1/events.grpc.pb.h"

namespace submarine::events {
namespace {

using submarine::common::v1::Event;
using submarine::common::v1::EventLog;
using submarine::common::v1::Principal;
using SteadyTime = std::chrono::steady_clock::time_point;

constexpr char kEventsPruned[] = "EVENTS_PRUNED";
constexpr auto kAckTimeout = std::chrono::seconds(2);
constexpr auto kResubscribeMinBackoff = std::chrono::milliseconds(50);
constexpr auto kResubscribeMaxBackoff = std::chrono::milliseconds(2000);
constexpr auto kQueueWait = std::chrono::milliseconds(100);
constexpr auto kReceivePoll = std::chrono::milliseconds(250);
constexpr int kMaxDrain = 1000;  // messages moved per queue lock
constexpr int kMaxReplyBytes = 64 << 20;

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A canonical (lower-case, 8-4-4-4-12 hex) UUID, or false.
bool CanonicalUuid(std::string* id) {
  if (id->size() != 36) return false;
  for (size_t i = 0; i < id->size(); ++i) {
    char& c = (*id)[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (std::isxdigit(static_cast<unsigned char>(c))) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      return false;
    }
  }
  return true;
}

bool HasReason(const absl::Status& status, const char* reason) {
  google::rpc::ErrorInfo info;
  return GetErrorInfo(status, &info) && info.reason() == reason;
}

// The publisher no longer has `first_missing` (its retention pruned it).
absl::Status EventsPruned(const std::string& publisher, uint64_t first_missing) {
  return MakeError(
      absl::StatusCode::kFailedPrecondition, kEventsPruned,
      absl::StrCat("publisher ", publisher, " no longer has event ", first_missing,
                   " (pruned by its retention): catching up from offset ", first_missing - 1,
                   " needs the events restored or the offset in consumer_offsets moved past them"),
      {{"publisher", publisher}, {"firstMissingSeq", std::to_string(first_missing)}});
}

}  // namespace

struct Subscriber::Counters {
  std::atomic<uint64_t> applied{0}, duplicates{0}, gaps{0}, heartbeat_gaps{0}, replays{0},
      overflows{0}, reconnects{0};
  metrics::Counter* m_applied;
  metrics::Counter* m_duplicates;
  metrics::Counter* m_gaps;
  metrics::Counter* m_replays;
  metrics::Counter* m_overflows;
  metrics::Counter* m_reconnects;
  metrics::Gauge* m_lag_events;
  metrics::Gauge* m_offset;
  metrics::Gauge* m_stranded;
  RejectedMessages bus_rejects;     // the receiver thread's
  RejectedMessages replay_rejects;  // the applier thread's

  explicit Counters(const Options& o)
      : bus_rejects(o.name, o.publisher), replay_rejects(o.name, o.publisher) {
    auto& reg = metrics::Registry::Global();
    std::string labels =
        absl::StrCat("subscriber=\"", o.name, "\",publisher=\"", o.publisher, "\"");
    m_applied = reg.GetCounter("submarine_events_applied_total",
                               "Events applied by a subscriber (exactly once each)", labels);
    m_duplicates = reg.GetCounter("submarine_events_duplicates_total",
                                  "Events a subscriber dropped as already applied", labels);
    m_gaps = reg.GetCounter("submarine_events_gaps_total",
                            "Sequence gaps (or heartbeats ahead) seen by a subscriber", labels);
    m_replays = reg.GetCounter("submarine_events_replays_total",
                               "Replays from the publisher's EventLog completed", labels);
    m_overflows = reg.GetCounter("submarine_events_subscriber_overflows_total",
                                 "Times a subscriber's bounded queue overflowed", labels);
    m_reconnects = reg.GetCounter("submarine_events_subscriber_reconnects_total",
                                  "Subscriber socket reconnects after silence", labels);
    m_lag_events = reg.GetGauge(
        "submarine_events_subscriber_lag_events",
        "Events the publisher has sequenced that a subscriber has not applied yet", labels);
    m_offset = reg.GetGauge("submarine_events_subscriber_offset",
                            "Last sequence number a subscriber applied", labels);
    m_stranded = reg.GetGauge(
        "submarine_events_subscriber_stranded",
        "1 while the publisher no longer has the events after a subscriber's offset", labels);
  }
};

Subscriber::Subscriber(Options options)
    : options_(std::move(options)),
      key_(options_.secret, options_.publisher),
      counters_(std::make_unique<Counters>(options_)) {}

Subscriber::~Subscriber() { Stop(); }

std::string Subscriber::TaskName() const {
  return absl::StrCat("subscriber(", options_.name, "<-", options_.publisher, ")");
}

absl::Status Subscriber::Start() {
  const auto& o = options_;
  if (o.name.empty() || o.service_name.empty() || o.publisher.empty() || o.topic_prefix.empty() ||
      o.subscribe_endpoint.empty() || o.event_log_address.empty() || o.pool == nullptr ||
      !o.apply || o.max_queue == 0 || o.max_batch == 0 || o.replay_page_size <= 0 ||
      o.ack_interval.count() <= 0 || o.stranded_retry.count() <= 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_SUBSCRIBER_OPTIONS",
                     "the subscriber needs name, service_name, publisher, topic_prefix, "
                     "subscribe_endpoint, event_log_address, pool, apply and positive queue, "
                     "batch and page sizes and intervals");
  }
  if (!IsValidSubscriberName(o.name)) {
    return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_SUBSCRIBER_OPTIONS",
                     "the subscriber's name must be 1-128 characters of [A-Za-z0-9._:/-] (the "
                     "publisher records its offset under it)");
  }
  if (o.secret.size() < kMinSecretBytes) {
    return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_SUBSCRIBER_OPTIONS",
                     "the subscriber needs the internal secret (server.gateway_secret_file) to "
                     "verify the publisher's events");
  }
  if (applier_.joinable()) return absl::OkStatus();
  stop_ = false;
  {
    std::lock_guard lock(mu_);
    queue_.clear();
    overflowed_ = false;
    subscribed_ = false;
  }
  last_receive_ns_ = SteadyNowNs();
  receiver_ = std::thread([this] { ReceiveLoop(); });
  applier_ = std::thread([this] { ApplyLoop(); });
  return absl::OkStatus();
}

void Subscriber::Stop() {
  if (!applier_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (active_call_ != nullptr) active_call_->TryCancel();
  }
  cv_.notify_all();
  receiver_wakeup_.Signal();
  receiver_.join();
  applier_.join();
}

bool Subscriber::Healthy() const {
  {
    std::lock_guard lock(mu_);
    if (overflowed_) return false;
  }
  if (stranded_.load()) return false;
  const int64_t since = behind_since_ns_.load();
  return since == 0 || std::chrono::nanoseconds(SteadyNowNs() - since) <= options_.max_lag;
}

void Subscriber::UpdateLag(bool advanced) {
  const uint64_t last = publisher_seq_.load();
  const uint64_t off = offset_.load();
  const uint64_t lag = last > off ? last - off : 0;
  counters_->m_lag_events->Set(static_cast<int64_t>(lag));
  if (lag == 0) {
    behind_since_ns_ = 0;
  } else if (advanced || behind_since_ns_.load() == 0) {
    behind_since_ns_ = SteadyNowNs();
  }
}

Subscriber::Stats Subscriber::stats() const {
  Stats s;
  s.applied = counters_->applied.load();
  s.duplicates = counters_->duplicates.load();
  s.gaps = counters_->gaps.load();
  s.heartbeat_gaps = counters_->heartbeat_gaps.load();
  s.replays = counters_->replays.load();
  s.overflows = counters_->overflows.load();
  s.reconnects = counters_->reconnects.load();
  s.rejected = counters_->bus_rejects.total() + counters_->replay_rejects.total();
  return s;
}

// The receiver thread: owns the SUB socket from creation to close.
void Subscriber::ReceiveLoop() {
  auto log = log::Get("events");
  while (!stop_) {
    zmq::socket_t socket(ProcessContext(), zmq::socket_type::sub);
    try {
      socket.set(zmq::sockopt::rcvhwm, options_.rcv_hwm);
      socket.set(zmq::sockopt::linger, 0);
      socket.set(zmq::sockopt::heartbeat_ivl, 1000);
      socket.set(zmq::sockopt::heartbeat_timeout, 3000);
      socket.connect(options_.subscribe_endpoint);
      socket.set(zmq::sockopt::subscribe, options_.topic_prefix);
    } catch (const zmq::error_t& e) {
      // A malformed endpoint: nothing will ever arrive; the applier's silence check and
      // replays keep the subscriber correct, the log says why it is not live.
      log->error("subscriber {} cannot connect to {}: {}", options_.name,
                 options_.subscribe_endpoint, e.what());
      socket.close();
      std::unique_lock lock(mu_);
      subscribed_ = true;  // replays still work without the live stream
      cv_.notify_all();
      cv_.wait_for(lock, kResubscribeMaxBackoff, [this] { return stop_.load(); });
      continue;
    }
    reconnect_ = false;
    {
      std::lock_guard lock(mu_);
      subscribed_ = true;
    }
    cv_.notify_all();
    std::vector<BusMessage> drained;
    while (!stop_ && !reconnect_) {
      zmq_pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0}, receiver_wakeup_.PollItem()};
      try {
        zmq::poll(items, 2, kReceivePoll);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        log->error("subscriber {} poll failed: {}", options_.name, e.what());
        break;
      }
      if (items[1].revents & ZMQ_POLLIN) receiver_wakeup_.Drain();
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      drained.clear();
      try {
        for (int i = 0; i < kMaxDrain; ++i) {
          std::vector<zmq::message_t> frames;
          if (!zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
            break;
          }
          auto msg = ParseBusMessage(frames, options_.topic_prefix, key_);
          if (!msg.ok()) {
            counters_->bus_rejects.Reject(msg.status());
            continue;
          }
          drained.push_back(std::move(*msg));
        }
      } catch (const zmq::error_t& e) {
        // What was lost is repaired by the gap check; a broken socket is replaced.
        if (e.num() != EINTR) {
          log->error("subscriber {} receive failed: {}; reconnecting", options_.name, e.what());
          break;
        }
      }
      if (drained.empty()) continue;  // only verified messages prove the stream is alive
      last_receive_ns_ = SteadyNowNs();
      {
        std::lock_guard lock(mu_);
        for (auto& m : drained) {
          if (overflowed_) break;  // the replay that clears the overflow covers these
          if (queue_.size() >= options_.max_queue) {
            overflowed_ = true;
            queue_.clear();
            counters_->overflows++;
            counters_->m_overflows->Inc();
            log->error(
                "subscriber {} of {}: more than {} events queued; NOT_SERVING until it "
                "has caught up from its offset {}",
                options_.name, options_.publisher, options_.max_queue, offset_.load());
            break;
          }
          queue_.push_back(std::move(m));
        }
      }
      cv_.notify_one();
    }
    socket.close();
  }
}

// The applier thread: owns the gRPC stub and every database transaction of the subscriber.
void Subscriber::ApplyLoop() {
  auto log = log::Get("events");
  const auto& o = options_;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReplyBytes);
  auto stub = EventLog::NewStub(rpc::MakeChannel(o.event_log_address, args));
  const Principal self = auth::ServicePrincipal(o.service_name);
  auto backoff = kResubscribeMinBackoff;
  auto wait = [&](std::chrono::milliseconds period) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, period, [this] { return stop_.load(); });
  };
  auto pause = [&](const absl::Status& why, const char* what) {
    log->warn("subscriber {} of {}: {} failed: {}; retrying in {} ms", o.name, o.publisher, what,
              Message(why), backoff.count());
    wait(backoff);
    backoff = std::min(backoff * 2, kResubscribeMaxBackoff);
  };
  auto deadline = [&] { return std::chrono::system_clock::now() + o.call_timeout; };

  // One EventLog call as this service, within `timeout`; Stop() cancels it when `cancellable`.
  auto call = [&](std::chrono::milliseconds timeout, bool cancellable,
                  const std::function<grpc::Status(grpc::ClientContext*)>& rpc) -> absl::Status {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    rpc::ActAs(&ctx, self);
    if (cancellable) {
      std::lock_guard lock(mu_);
      if (stop_) return absl::CancelledError("stopping");
      active_call_ = &ctx;
    }
    grpc::Status gs = rpc(&ctx);
    if (cancellable) {
      std::lock_guard lock(mu_);
      active_call_ = nullptr;
    }
    return gs.ok() ? absl::OkStatus() : FromGrpcStatus(gs);
  };

  // Reports the durable offset to the publisher, for its retention.
  const auto ack_timeout = std::min<std::chrono::milliseconds>(o.call_timeout, kAckTimeout);
  bool ack_failing = false;
  auto acknowledge = [&](bool final) {
    submarine::common::v1::AcknowledgeEventsRequest req;
    req.set_publisher(o.publisher);
    req.set_subscriber(o.name);
    req.set_seq(offset_);
    submarine::common::v1::AcknowledgeEventsResponse resp;
    absl::Status st = call(ack_timeout, !final, [&](grpc::ClientContext* ctx) {
      return stub->AcknowledgeEvents(ctx, req, &resp);
    });
    if (st.ok()) {
      if (ack_failing)
        log->info("subscriber {} of {} reports its offset again", o.name, o.publisher);
      ack_failing = false;
    } else if (final) {
      // Expected when the publisher stops too (or is this very process, whose server has
      // already drained): the previous report is at most ack_interval old.
      log->info("subscriber {} of {}: its last offset report ({}) did not arrive: {}", o.name,
                o.publisher, req.seq(), Message(st));
    } else if (!ack_failing && !stop_) {
      log->warn(
          "subscriber {} of {}: reporting offset {} failed: {}; the publisher's retention "
          "keeps its last report for events.consumer_ttl_hours",
          o.name, o.publisher, req.seq(), Message(st));
      ack_failing = true;
    }
  };
  SteadyTime next_ack{};
  auto maybe_acknowledge = [&] {
    auto now = std::chrono::steady_clock::now();
    if (now < next_ack) return;
    next_ack = now + o.ack_interval;
    acknowledge(false);
  };

  // The publisher has sequenced at least `seq`.
  auto heard_of = [&](uint64_t seq) {
    uint64_t known = publisher_seq_.load();
    while (known < seq && !publisher_seq_.compare_exchange_weak(known, seq)) {
    }
    UpdateLag(false);
  };

  // Applies consecutive events (event i has seq offset_ + 1 + i) in one transaction.
  auto apply_batch = [&](std::vector<Event>& events) -> absl::Status {
    uint64_t applied = 0;
    SUBMARINE_RETURN_IF_ERROR(o.pool->Transact(deadline(), [&](pqxx::work& tx) {
      applied = 0;
      auto fresh = InboxStore::Insert(tx, o.publisher, events);
      for (const auto& e : events) {
        if (!fresh.count(e.header().event_id())) continue;
        SUBMARINE_RETURN_IF_ERROR(o.apply(tx, e));
        ++applied;
      }
      return absl::OkStatus();
    }));
    offset_ = events.back().header().seq();
    counters_->applied += applied;
    counters_->m_applied->Inc(applied);
    counters_->duplicates += events.size() - applied;
    counters_->m_duplicates->Inc(events.size() - applied);
    counters_->m_offset->Set(static_cast<int64_t>(offset_.load()));
    heard_of(offset_);
    UpdateLag(/*advanced=*/true);
    return absl::OkStatus();
  };

  // Replays from offset_ until the publisher reports nothing newer.
  auto replay = [&]() -> absl::Status {
    for (;;) {
      submarine::common::v1::ListEventsRequest req;
      req.set_publisher(o.publisher);
      req.set_after_seq(offset_);
      req.set_page_size(o.replay_page_size);
      submarine::common::v1::ListEventsResponse resp;
      SUBMARINE_RETURN_IF_ERROR(call(o.call_timeout, true, [&](grpc::ClientContext* ctx) {
        return stub->ListEvents(ctx, req, &resp);
      }));
      // The publisher's own answer: it may also lower what heartbeats claimed.
      publisher_seq_ = resp.last_seq();
      UpdateLag(false);
      const uint64_t first = offset_ + 1;
      if (resp.events_size() == 0) {
        return resp.last_seq() >= first ? EventsPruned(o.publisher, first) : absl::OkStatus();
      }
      if (resp.events(0).header().seq() > first) return EventsPruned(o.publisher, first);
      std::vector<Event> page(std::make_move_iterator(resp.mutable_events()->begin()),
                              std::make_move_iterator(resp.mutable_events()->end()));
      for (size_t i = 0; i < page.size(); ++i) {
        if (!VerifyEvent(key_, page[i])) {
          absl::Status rejected =
              MakeError(absl::StatusCode::kUnauthenticated, kEventMacInvalid,
                        absl::StrCat("event ", page[i].header().seq(), " replayed from ",
                                     o.publisher, " does not verify under its key"),
                        {{"publisher", o.publisher}});
          counters_->replay_rejects.Reject(rejected);
          return rejected;
        }
        if (page[i].header().seq() != first + i ||
            !CanonicalUuid(page[i].mutable_header()->mutable_event_id())) {
          return Internal(absl::StrCat("EventLog of ", o.publisher, " returned event seq ",
                                       page[i].header().seq(), " where ", first + i,
                                       " with a UUID event id was expected"));
        }
      }
      for (size_t begin = 0; begin < page.size(); begin += o.max_batch) {
        size_t end = std::min(page.size(), begin + o.max_batch);
        std::vector<Event> batch(std::make_move_iterator(page.begin() + begin),
                                 std::make_move_iterator(page.begin() + end));
        SUBMARINE_RETURN_IF_ERROR(apply_batch(batch));
      }
      if (offset_ >= resp.last_seq()) return absl::OkStatus();
      if (stop_) return absl::CancelledError("stopping");
    }
  };

  auto read_offset = [&] {
    return o.pool->Transact(deadline(), [&](pqxx::work& tx) {
      offset_ = InboxStore::ReadOffset(tx, o.publisher);
      return absl::OkStatus();
    });
  };

  {  // Subscribe first (Clone ordering): live events published during the replay are queued.
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return subscribed_ || stop_; });
  }
  bool offset_known = false;
  while (!stop_) {
    absl::Status st = read_offset();
    if (st.ok()) {
      offset_known = true;
      break;
    }
    pause(st, "reading the offset");
  }
  backoff = kResubscribeMinBackoff;
  if (offset_known) {
    counters_->m_offset->Set(static_cast<int64_t>(offset_.load()));
    log->info("subscriber {} of {} starts from offset {}", o.name, o.publisher, offset_.load());
  }

  bool need_replay = true;
  while (!stop_) {
    maybe_acknowledge();
    bool overflow;
    {
      std::lock_guard lock(mu_);
      overflow = overflowed_;
    }
    if (need_replay || overflow) {
      absl::Status st = replay();
      if (!st.ok()) {
        if (stop_) break;
        if (!HasReason(st, kEventsPruned)) {
          pause(st, "replay");
          continue;
        }
        if (!stranded_.exchange(true)) counters_->m_stranded->Set(1);
        log->error("subscriber {} of {} is STRANDED (NOT_SERVING): {}; trying again in {} ms",
                   o.name, o.publisher, Message(st), o.stranded_retry.count());
        wait(o.stranded_retry);
        // An operator may have moved the offset past the hole (or restored the events).
        const uint64_t before = offset_;
        st = read_offset();
        if (!st.ok()) {
          log->warn("subscriber {} of {}: re-reading the offset failed: {}", o.name, o.publisher,
                    Message(st));
        } else if (offset_ != before) {
          log->warn("subscriber {} of {}: offset moved from {} to {} outside the subscriber",
                    o.name, o.publisher, before, offset_.load());
          counters_->m_offset->Set(static_cast<int64_t>(offset_.load()));
          UpdateLag(/*advanced=*/true);
        }
        continue;
      }
      if (stranded_.exchange(false)) {
        counters_->m_stranded->Set(0);
        log->warn("subscriber {} of {} is no longer stranded: caught up at {}", o.name, o.publisher,
                  offset_.load());
      }
      backoff = kResubscribeMinBackoff;
      need_replay = false;
      counters_->replays++;
      counters_->m_replays->Inc();
      if (overflow) {
        std::lock_guard lock(mu_);
        overflowed_ = false;
        log->warn("subscriber {} of {} caught up at {} after an overflow; SERVING", o.name,
                  o.publisher, offset_.load());
      }
      continue;
    }

    std::vector<BusMessage> items;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, kQueueWait, [this] { return stop_ || !queue_.empty() || overflowed_; });
      while (!queue_.empty() && items.size() < o.max_batch) {
        items.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (items.empty()) {
      auto silent = std::chrono::nanoseconds(SteadyNowNs() - last_receive_ns_.load());
      if (silent > o.silence_timeout) {
        log->warn("subscriber {}: nothing from the bus for {} ms; reconnecting and replaying",
                  o.name, std::chrono::duration_cast<std::chrono::milliseconds>(silent).count());
        counters_->reconnects++;
        counters_->m_reconnects->Inc();
        last_receive_ns_ = SteadyNowNs();
        reconnect_ = true;
        receiver_wakeup_.Signal();
        need_replay = true;
      }
      continue;
    }

    // Every message here was verified as the publisher's (ParseBusMessage).
    std::vector<Event> batch;
    uint64_t expect = offset_;
    for (auto& m : items) {
      if (m.heartbeat) {
        heard_of(m.beat.last_seq());
        if (m.beat.last_seq() > expect) {
          counters_->heartbeat_gaps++;
          counters_->gaps++;
          counters_->m_gaps->Inc();
          need_replay = true;
          break;
        }
        continue;
      }
      auto& e = m.event;
      uint64_t seq = e.header().seq();
      heard_of(seq);
      if (seq <= expect) {
        counters_->duplicates++;
        counters_->m_duplicates->Inc();
        continue;
      }
      if (seq != expect + 1 || !CanonicalUuid(e.mutable_header()->mutable_event_id())) {
        counters_->gaps++;
        counters_->m_gaps->Inc();
        need_replay = true;
        break;
      }
      batch.push_back(std::move(e));
      expect = seq;
    }
    if (batch.empty()) continue;
    absl::Status st = apply_batch(batch);
    if (!st.ok()) {
      if (stop_) break;
      need_replay = true;  // re-read the events from the publisher, from the durable offset
      pause(st, "applying events");
      continue;
    }
    backoff = kResubscribeMinBackoff;
  }
  // The last report, so the publisher's retention knows exactly where this subscriber stopped.
  if (offset_known) acknowledge(/*final=*/true);
}

}  // namespace submarine::events
