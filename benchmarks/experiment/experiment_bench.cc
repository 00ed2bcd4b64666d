// bench-experiment: how fast experiments are accepted and launched. In one run, against real
// processes (a throwaway PostgreSQL, submarine-experiment, submarine-gateway, the task
// supervisors), it measures:
//   1. admission through the gateway: POST /v1/projects/p/experiments from N keep-alive
//      connections for a fixed time — each experiment stored, its events written, and admitted by
//      the controller (PENDING → ACCEPTED), but not launched: the service runs with
//      local.max_running_tasks 1, taken by a sleeping experiment, so launching costs nothing here;
//   2. the baseline: the same CreateExperiment as gRPC straight to the service, N in flight;
//   3. launch latency: one `true` experiment at a time (paced), create → RUNNING as recorded in
//      its history (the first task's start), p50 and p99; baseline: posix_spawn + wait of `true`
//      in this process;
//   4. sustained launch rate: M `true` experiments created at once, until all SUCCEEDED.
// Goals (issue 9): admission ≥ 500/s through the gateway; launch p50 < 100 ms. Printed, never
// asserted.

#include <grpcpp/grpcpp.h>
#include <spawn.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/db/statement.h"
#include "tests/integration/experiment/experiment_fixture.h"
#include "tests/support/http_client.h"

extern char** environ;

namespace submarine::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = submarine::experiment::v1;
using submarine::testing::HttpConnection;

struct Result {
  double seconds = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  std::vector<double> latencies_ms;
  double Rate() const { return seconds > 0 ? ok / seconds : 0; }
  double Percentile(double p) {
    if (latencies_ms.empty()) return 0;
    std::sort(latencies_ms.begin(), latencies_ms.end());
    return latencies_ms[std::min(latencies_ms.size() - 1,
                                 static_cast<size_t>(p * latencies_ms.size()))];
  }
};

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

v1::Experiment Shell(const std::string& cmd) {
  v1::Experiment e;
  e.mutable_spec()->mutable_meta()->set_cmd(cmd);
  (*e.mutable_spec()->mutable_spec())["Worker"].set_replicas(1);
  return e;
}

// `threads` clients, each running `call` back to back for `duration` (after `warmup`).
Result Drive(int threads, std::chrono::milliseconds warmup, std::chrono::milliseconds duration,
             const std::function<std::function<bool()>()>& make_client) {
  std::vector<Result> parts(threads);
  std::atomic<bool> measuring{false}, stop{false};
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      auto call = make_client();
      while (!stop) {
        auto t = Clock::now();
        bool ok = call();
        if (!measuring) continue;
        if (ok) {
          ++parts[i].ok;
          parts[i].latencies_ms.push_back(MsSince(t));
        } else {
          ++parts[i].errors;
        }
      }
    });
  }
  std::this_thread::sleep_for(warmup);
  measuring = true;
  auto begin = Clock::now();
  std::this_thread::sleep_for(duration);
  measuring = false;
  Result total;
  total.seconds = MsSince(begin) / 1000;
  stop = true;
  for (auto& w : workers) w.join();
  for (auto& p : parts) {
    total.ok += p.ok;
    total.errors += p.errors;
    total.latencies_ms.insert(total.latencies_ms.end(), p.latencies_ms.begin(),
                              p.latencies_ms.end());
  }
  return total;
}

// Waits until no experiment is PENDING (the controller admitted everything created); its time.
double DrainMs(v1::ExperimentService::Stub& stub) {
  auto start = Clock::now();
  while (MsSince(start) < 120000) {
    v1::ListExperimentsRequest req;
    req.set_parent("projects/p");
    req.set_filter("state = \"PENDING\"");
    req.set_page_size(1);
    v1::ListExperimentsResponse page;
    auto ctx = testing::ExperimentCtx();
    if (stub.ListExperiments(ctx.get(), req, &page).ok() && page.experiments_size() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return MsSince(start);
}

bool Create(v1::ExperimentService::Stub& stub, const v1::Experiment& e, v1::Experiment* out) {
  v1::CreateExperimentRequest req;
  req.set_parent("projects/p");
  *req.mutable_experiment() = e;
  auto ctx = testing::ExperimentCtx();
  return stub.CreateExperiment(ctx.get(), req, out).ok();
}

v1::Experiment Get(v1::ExperimentService::Stub& stub, const std::string& name) {
  v1::GetExperimentRequest req;
  req.set_name(name);
  v1::Experiment out;
  auto ctx = testing::ExperimentCtx();
  (void)stub.GetExperiment(ctx.get(), req, &out);
  return out;
}

double SpawnTrueMs() {
  auto t = Clock::now();
  pid_t pid = 0;
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  if (posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return MsSince(t);
}

int Main(int argc, char** argv) {
  CLI::App app{"bench-experiment: admission and launch of experiments"};
  int seconds = 5, connections = 16, launches = 40, burst = 100;
  app.add_option("--duration", seconds, "Measured seconds per admission scenario")
      ->capture_default_str();
  app.add_option("--connections", connections, "Concurrent clients for admission")
      ->capture_default_str();
  app.add_option("--launches", launches, "Paced single launches for the latency")
      ->capture_default_str();
  app.add_option("--burst", burst, "Experiments created at once for the sustained rate")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto warmup = std::chrono::milliseconds(1000);
  auto duration = std::chrono::milliseconds(seconds * 1000);

  // ---- admission: a service whose one local slot is taken, with a gateway in front
  auto admit = testing::StartExperimentService(nullptr, "  max_running_tasks: 1\n",
                                               /*control_interval_ms=*/0);
  if (!admit.ok()) {
    std::fprintf(stderr, "cannot start the experiment service: %s\n",
                 std::string(admit.status().message()).c_str());
    return 1;
  }
  auto& svc = **admit;
  v1::Experiment sleeper;
  Create(*svc.stub, Shell("exec sleep 3600"), &sleeper);
  testing::ReadyInfo gw;
  auto gateway = testing::StartService(
      "submarine-gateway", svc.dir, "gateway",
      absl::StrCat("http_listen: 127.0.0.1:0\nbackends:\n  - address: ", svc.ready.grpc,
                   "\n    services: [submarine.experiment.v1.ExperimentService]\n",
                   "auth:\n  insecure_no_authorization: true\nserver: {}\n"),
      &gw);
  if (!gateway.ok()) {
    std::fprintf(stderr, "cannot start the gateway: %s\n",
                 std::string(gateway.status().message()).c_str());
    return 1;
  }
  const std::string body =
      R"({"spec":{"meta":{"cmd":"true"},"spec":{"Worker":{"replicas":1,"resources":"cpu=1,memory=1Gi"}}}})";
  std::function<std::function<bool()>()> rest_client = [&] {
    auto conn =
        std::make_shared<absl::StatusOr<HttpConnection>>(HttpConnection::Connect(gw.http));
    return std::function<bool()>([conn, &body, &gw] {
      if (!conn->ok()) {
        *conn = HttpConnection::Connect(gw.http);
        return false;
      }
      auto r = (*conn)->Request("POST", "/v1/projects/p/experiments", body,
                                {{"Content-Type", "application/json"}});
      if (!r.ok()) *conn = HttpConnection::Connect(gw.http);
      return r.ok() && r->status == 200;
    });
  };
  std::function<std::function<bool()>()> grpc_client = [&] {
    return std::function<bool()>([&svc] {
      v1::Experiment out;
      return Create(*svc.stub, Shell("true"), &out);
    });
  };
  // Order-balanced (REST, gRPC, gRPC, REST; half the duration each): the table grows as the run
  // goes. Every created experiment must be admitted, not just stored: each round's backlog is
  // drained before the next starts, and the drain time is reported.
  Result rest, grpc;
  double rest_drain_ms = 0, grpc_drain_ms = 0;
  for (bool rest_round : {true, false, false, true}) {
    Result r = Drive(connections, warmup, duration / 2, rest_round ? rest_client : grpc_client);
    Result& total = rest_round ? rest : grpc;
    total.seconds += r.seconds;
    total.ok += r.ok;
    total.errors += r.errors;
    total.latencies_ms.insert(total.latencies_ms.end(), r.latencies_ms.begin(),
                              r.latencies_ms.end());
    (rest_round ? rest_drain_ms : grpc_drain_ms) += DrainMs(*svc.stub);
  }


  // ---- launch: a fresh service with no limit
  svc.process.Kill();
  auto launch = testing::StartExperimentService(nullptr, "", /*control_interval_ms=*/0);
  if (!launch.ok()) return 1;
  auto& lsvc = **launch;
  Result spawn;
  for (int i = 0; i < launches; ++i) spawn.latencies_ms.push_back(SpawnTrueMs());
  Result single;
  for (int i = 0; i < launches; ++i) {
    v1::Experiment e;
    if (!Create(*lsvc.stub, Shell("true"), &e)) {
      ++single.errors;
      continue;
    }
    v1::Experiment done;
    auto t = Clock::now();
    do {
      done = Get(*lsvc.stub, e.name());
    } while (done.state() < v1::SUCCEEDED && MsSince(t) < 30000);
    for (const auto& h : done.history()) {
      if (h.state() == v1::RUNNING) {
        double ms = (db::Timestamp::FromProto(h.time()).micros -
                     db::Timestamp::FromProto(e.create_time()).micros) /
                    1000.0;
        single.latencies_ms.push_back(ms);
        ++single.ok;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // paced: one at a time
  }
  std::vector<std::string> names;
  auto burst_start = Clock::now();
  for (int i = 0; i < burst; ++i) {
    v1::Experiment e;
    if (Create(*lsvc.stub, Shell("true"), &e)) names.push_back(e.name());
  }
  size_t finished = 0;
  for (const auto& n : names) {
    auto t = Clock::now();
    while (Get(*lsvc.stub, n).state() < v1::SUCCEEDED && MsSince(t) < 120000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ++finished;
  }
  double burst_s = MsSince(burst_start) / 1000;

  std::printf("\nbench-experiment (%d s per admission scenario, %d connections)\n", seconds,
              connections);
  std::printf("%-44s %10s %9s %9s %7s\n", "scenario", "per s", "p50 ms", "p99 ms", "errors");
  auto row = [](const char* name, Result& r) {
    std::printf("%-44s %10.0f %9.2f %9.2f %7llu\n", name, r.Rate(), r.Percentile(0.5),
                r.Percentile(0.99), static_cast<unsigned long long>(r.errors));
  };
  row("admission: REST create via gateway", rest);
  row("admission: gRPC create direct (baseline)", grpc);
  std::printf("gateway / direct: %.0f %% ; admission goal >= 500/s via gateway: %s\n",
              grpc.Rate() > 0 ? 100 * rest.Rate() / grpc.Rate() : 0,
              rest.Rate() >= 500 ? "met" : "NOT met");
  std::printf("every experiment admitted (PENDING -> ACCEPTED) %.1f s (REST) and %.1f s (gRPC) "
              "after the scenario's last create\n",
              rest_drain_ms / 1000, grpc_drain_ms / 1000);
  std::printf("%-44s %10s %9.2f %9.2f\n", "spawn /bin/true in-process (baseline)", "-",
              spawn.Percentile(0.5), spawn.Percentile(0.99));
  std::printf("%-44s %10s %9.2f %9.2f %7llu\n", "launch: create -> RUNNING (one at a time)", "-",
              single.Percentile(0.5), single.Percentile(0.99),
              static_cast<unsigned long long>(single.errors));
  std::printf("launch p50 / spawn p50: %.0fx ; launch goal p50 < 100 ms: %s\n",
              spawn.Percentile(0.5) > 0 ? single.Percentile(0.5) / spawn.Percentile(0.5) : 0,
              single.Percentile(0.5) < 100 ? "met" : "NOT met");
  std::printf("sustained: %zu experiments created at once finished in %.1f s = %.1f launches/s\n",
              finished, burst_s, burst_s > 0 ? finished / burst_s : 0);
  return 0;
}

}  // namespace
}  // namespace submarine::bench

int main(int argc, char** argv) { return submarine::bench::Main(argc, argv); }
