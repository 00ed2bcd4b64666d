// bench-eventbus: the event system's sustained throughput and commit → applied latency, through a
// real submarine-eventbus process and a real (throwaway, fsync off) PostgreSQL, printed against
// the goals (>= 20,000 events/s, p99 < 20 ms) and against a baseline measured in the same run:
// raw ZeroMQ PUB → eventbus → SUB with the same four frames (a MAC-sized last one, neither
// computed nor verified) and no PostgreSQL at all, so the ratio includes what authenticating
// every event costs (one HMAC-SHA-256 at the relay, one at the subscriber).
//
// Phases, each bounded in time:
//   1. baseline: --baseline-messages raw messages (default 200,000);
//   2. throughput: --publishers threads commit --events events (default 50,000), --per-tx per
//      transaction, as fast as they can; the clock stops when the subscriber applied the last;
//   3. latency: --rate events/s paced for --latency-seconds, so latency is not queueing.
// Latency = the subscriber's apply callback time − the event's occurred_at (its outbox insert).
// Usage: bench-eventbus [--events N] [--publishers P] [--per-tx K] [--rate R]
//                       [--latency-seconds S] [--baseline-messages M] [--max-seconds T]

#include <google/protobuf/wrappers.pb.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq_addon.hpp>

#include "common/events/subscriber.h"
#include "common/events/wire.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "tests/integration/events/events_harness.h"
#include "tests/support/process.h"

namespace submarine::events::bench {
namespace {

using Steady = std::chrono::steady_clock;
using testing::BusProcess;
using testing::TestConsumer;
using testing::TestPublisher;

constexpr double kGoalEventsPerSecond = 20000;
constexpr double kGoalP99Ms = 20;

struct Flags {
  int64_t backlog = 100000;
  int64_t events = 50000;
  int publishers = 2;
  int per_tx = 1;
  int rate = 2000;
  int latency_seconds = 5;
  int64_t baseline_messages = 200000;
  int max_seconds = 120;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    int64_t v = std::atoll(argv[i + 1]);
    if (k == "--events")
      f.events = v;
    else if (k == "--backlog")
      f.backlog = v;
    else if (k == "--publishers")
      f.publishers = static_cast<int>(v);
    else if (k == "--per-tx")
      f.per_tx = static_cast<int>(v);
    else if (k == "--rate")
      f.rate = static_cast<int>(v);
    else if (k == "--latency-seconds")
      f.latency_seconds = static_cast<int>(v);
    else if (k == "--baseline-messages")
      f.baseline_messages = v;
    else if (k == "--max-seconds")
      f.max_seconds = static_cast<int>(v);
    else {
      std::cerr << "unknown flag " << k << "\n";
      std::exit(2);
    }
  }
  return f;
}

double Seconds(Steady::duration d) { return std::chrono::duration<double>(d).count(); }

// Latencies (ms) seen by the subscriber's apply callback; single writer (the applier thread).
class LatencyRecorder {
 public:
  void Record(const submarine::common::v1::Event& e) {
    double ms = std::chrono::duration<double, std::milli>(std::chrono::system_clock::now() -
                                                          FromTimestamp(e.header().occurred_at()))
                    .count();
    std::lock_guard lock(mu_);
    samples_.push_back(ms);
  }
  std::vector<double> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(samples_, {});
  }

 private:
  std::mutex mu_;
  std::vector<double> samples_;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// Raw PUB -> bus -> SUB messages/s with event-sized frames; returns messages delivered per second.
double BaselineThroughput(const BusProcess& bus, int64_t messages, Steady::time_point deadline,
                          int64_t* delivered_out) {
  const std::string topic = "bench.raw.v1.Int64Value";
  const std::string header(96, 'h');
  const std::string payload(3, 'p');
  const std::string mac(kMacBytes, 'm');
  zmq::socket_t sub(ProcessContext(), zmq::socket_type::sub);
  sub.set(zmq::sockopt::rcvhwm, 100000);
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::subscribe, "bench.raw.");
  sub.connect(bus.backend());
  zmq::socket_t pub(ProcessContext(), zmq::socket_type::pub);
  pub.set(zmq::sockopt::sndhwm, 100000);
  pub.set(zmq::sockopt::linger, 0);
  pub.connect(bus.frontend());
  // Wait (bounded) until the subscription reached the publisher: probes start arriving.
  std::vector<zmq::message_t> frames;
  bool joined = submarine::testing::WaitFor([&] {
    pub.send(zmq::buffer(std::string("bench.raw.probe")), zmq::send_flags::dontwait);
    frames.clear();
    return zmq::recv_multipart(sub, std::back_inserter(frames), zmq::recv_flags::dontwait)
        .has_value();
  });
  if (!joined) return 0;
  while (zmq::recv_multipart(sub, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
  }
  std::atomic<int64_t> delivered{0};
  std::atomic<bool> done{false};
  Steady::time_point last_receive;
  std::thread receiver([&] {
    zmq::socket_t& s = sub;  // owned by this thread until it is joined
    while (!done && Steady::now() < deadline) {
      zmq_pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      std::vector<zmq::message_t> f;
      while (zmq::recv_multipart(s, std::back_inserter(f), zmq::recv_flags::dontwait)) {
        bool probe = f.size() != 4;  // a late join probe, not a measured message
        f.clear();
        if (probe) continue;
        last_receive = Steady::now();
        if (delivered.fetch_add(1) + 1 >= messages) done = true;
      }
    }
  });
  auto start = Steady::now();
  for (int64_t i = 0; i < messages; ++i) {
    pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(header), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(payload), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(mac), zmq::send_flags::none);
  }
  // Whatever was dropped at a high-water mark never arrives: stop once deliveries stall.
  int64_t seen = -1;
  while (!done && Steady::now() < deadline) {
    int64_t now = delivered.load();
    if (now == seen) break;
    seen = now;
    submarine::testing::WaitFor([&] { return done.load() || delivered.load() != now; },
                                std::chrono::milliseconds(1000));
  }
  done = true;
  receiver.join();
  *delivered_out = delivered.load();
  pub.close();
  sub.close();
  return static_cast<double>(*delivered_out) / Seconds(last_receive - start);
}

int Run(const Flags& f) {
  auto deadline = Steady::now() + std::chrono::seconds(f.max_seconds);
  auto dir = submarine::testing::MakeTempDir("bench-eventbus");
  auto bus = BusProcess::Start(dir);
  if (!bus.ok()) {
    std::cerr << "eventbus: " << Message(bus.status()) << "\n";
    return 1;
  }
  int64_t delivered = 0;
  double baseline = BaselineThroughput(**bus, f.baseline_messages, deadline, &delivered);
  std::printf("baseline  raw ZeroMQ PUB -> eventbus -> SUB: %.0f msgs/s (%lld of %lld delivered)\n",
              baseline, static_cast<long long>(delivered),
              static_cast<long long>(f.baseline_messages));

  auto publisher = TestPublisher::Create("bench");
  auto consumer = TestConsumer::Create();
  if (!publisher.ok() || !consumer.ok()) {
    std::cerr << "database setup failed\n";
    return 1;
  }
  // Phase 1: pipeline capacity. A backlog committed before the relay and subscriber start is
  // drained through outbox -> relay -> bus -> subscriber (inbox + offset in PostgreSQL): the rate
  // the event system sustains on its own, whatever the writers' commit rate.
  auto backlog_start = Steady::now();
  if (!(*publisher)->Append(f.backlog, 1000).ok()) {
    std::cerr << "backlog append failed\n";
    return 1;
  }
  double backlog_commit_s = Seconds(Steady::now() - backlog_start);
  OutboxRelay relay((*publisher)->RelayOptions((*bus)->frontend(), 1000));
  LatencyRecorder latencies;
  auto options = (*consumer)->SubscriberOptions(**publisher, (*bus)->backend());
  options.name = "bench";
  options.max_queue = 200000;
  options.max_batch = 1000;
  options.silence_timeout = std::chrono::seconds(5);
  options.apply = [&](pqxx::work&, const submarine::common::v1::Event& e) {
    latencies.Record(e);
    return absl::OkStatus();
  };
  Subscriber subscriber(options);
  auto drain_start = Steady::now();
  if (!relay.Start().ok() || !subscriber.Start().ok()) return 1;
  bool drained = submarine::testing::WaitFor(
      [&] { return subscriber.offset() >= static_cast<uint64_t>(f.backlog); },
      std::chrono::seconds(f.max_seconds));
  double pipeline = static_cast<double>(subscriber.offset()) / Seconds(Steady::now() - drain_start);
  latencies.Take();  // backlog latencies are queueing time, not delivery latency
  std::printf("pipeline  %lld-event backlog (committed in %.2f s, 1000 per transaction) drained "
              "relay -> bus -> subscriber:\n",
              static_cast<long long>(f.backlog), backlog_commit_s);
  std::printf("  sustained:                    %8.0f events/s  = %.2fx goal (20,000), %.3fx "
              "baseline%s\n",
              pipeline, pipeline / kGoalEventsPerSecond, pipeline / baseline,
              drained ? "" : " (DEADLINE: not all applied)");
  if (!submarine::testing::WaitFor([&] { return subscriber.stats().replays >= 1; })) return 1;

  // Phase 2: throughput.
  std::atomic<int64_t> committed{0};
  auto start = Steady::now();
  std::vector<std::thread> writers;
  for (int p = 0; p < f.publishers; ++p) {
    writers.emplace_back([&, p] {
      int64_t share = f.events / f.publishers + (p < f.events % f.publishers ? 1 : 0);
      for (int64_t done = 0; done < share && Steady::now() < deadline;) {
        int64_t n = std::min<int64_t>(f.per_tx, share - done);
        if ((*publisher)->Append(n, static_cast<int>(n)).ok()) {
          done += n;
          committed += n;
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  auto committed_at = Steady::now();
  bool all = submarine::testing::WaitFor(
      [&] { return subscriber.offset() >= static_cast<uint64_t>(f.backlog + committed.load()); },
      std::max(std::chrono::milliseconds(1),
               std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now())));
  auto applied_at = Steady::now();
  auto throughput_lat = latencies.Take();
  double commit_rate = static_cast<double>(committed.load()) / Seconds(committed_at - start);
  double sustained =
      static_cast<double>(subscriber.offset() - f.backlog) / Seconds(applied_at - start);
  double t_p50 = Percentile(throughput_lat, 0.50), t_p99 = Percentile(throughput_lat, 0.99);

  // Phase 3: latency at a paced rate.
  int64_t paced = 0;
  auto paced_start = Steady::now();
  auto paced_end = paced_start + std::chrono::seconds(f.latency_seconds);
  while (Steady::now() < paced_end && Steady::now() < deadline) {
    int64_t due = static_cast<int64_t>(Seconds(Steady::now() - paced_start) * f.rate);
    if (paced < due) {
      if ((*publisher)->Append(1).ok()) ++paced;
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // pacing, not synchronisation
    }
  }
  auto paced_done = Steady::now();
  uint64_t target = static_cast<uint64_t>(f.backlog + committed.load() + paced);
  submarine::testing::WaitFor([&] { return subscriber.offset() >= target; },
                              std::chrono::seconds(10));
  auto paced_lat = latencies.Take();
  double l_p50 = Percentile(paced_lat, 0.50), l_p99 = Percentile(paced_lat, 0.99);
  auto stats = subscriber.stats();
  subscriber.Stop();
  relay.Stop();

  std::printf("throughput %lld events, %d publisher threads, %d per transaction%s\n",
              static_cast<long long>(committed.load()), f.publishers, f.per_tx,
              all ? "" : " (DEADLINE: not all applied)");
  std::printf("  publisher commits:            %8.0f events/s\n", commit_rate);
  std::printf(
      "  sustained commit -> applied:  %8.0f events/s  = %.2fx goal (20,000), %.3fx "
      "baseline\n",
      sustained, sustained / kGoalEventsPerSecond, sustained / baseline);
  std::printf("  latency under that load:      p50 %.2f ms, p99 %.2f ms\n", t_p50, t_p99);
  std::printf("latency   %lld events paced at %d events/s (achieved %.0f/s by one writer)\n",
              static_cast<long long>(paced), f.rate,
              static_cast<double>(paced) / Seconds(paced_done - paced_start));
  std::printf(
      "  commit -> applied:            p50 %.2f ms, p99 %.2f ms  = p99 at %.2fx of the "
      "20 ms goal (< 1 meets it)\n",
      l_p50, l_p99, l_p99 / kGoalP99Ms);
  std::printf("subscriber gaps %llu, replays %llu, overflows %llu, duplicates %llu\n",
              static_cast<unsigned long long>(stats.gaps),
              static_cast<unsigned long long>(stats.replays),
              static_cast<unsigned long long>(stats.overflows),
              static_cast<unsigned long long>(stats.duplicates));
  (*bus)->process().Signal(SIGTERM);
  (*bus)->process().Wait(std::chrono::seconds(10));
  return all && drained ? 0 : 1;
}

}  // namespace
}  // namespace submarine::events::bench

int main(int argc, char** argv) {
  submarine::config::v1::LogConfig log;
  log.set_level("warn");
  submarine::log::Init(log, "bench-eventbus");
  return submarine::events::bench::Run(submarine::events::bench::ParseFlags(argc, argv));
}
