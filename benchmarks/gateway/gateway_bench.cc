// bench-gateway: what the REST gateway costs. In one run, on one machine, against real processes
// (a throwaway PostgreSQL, submarine-environment, submarine-gateway) it measures for a fixed
// duration with N concurrent keep-alive clients:
//   1. baseline:   the gateway's own GET /healthz (HTTP server cost only)
//   2. gateway:    GET /v1/projects/default/environments/bench (REST -> gRPC -> PostgreSQL)
//   3. direct:     the same GetEnvironment as gRPC straight to the service, N calls in flight
// and prints requests/s, p50/p99 latency and the ratios (goals: gateway >= 50 % of direct
// throughput, gateway p99 < 10 ms). Printed, never asserted.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/test_postgres.h"

namespace submarine::bench {
namespace {

using Clock = std::chrono::steady_clock;
using submarine::testing::HttpConnection;
namespace env = submarine::environment::v1;

constexpr char kEnvironment[] = "projects/default/environments/bench";

struct Result {
  std::string name;
  double seconds = 0;
  uint64_t ok = 0;
  uint64_t errors = 0;
  std::vector<uint32_t> latencies_us;

  double Rps() const { return seconds > 0 ? ok / seconds : 0; }
  double PercentileMs(double p) {
    if (latencies_us.empty()) return 0;
    std::sort(latencies_us.begin(), latencies_us.end());
    size_t i = std::min(latencies_us.size() - 1, static_cast<size_t>(p * latencies_us.size()));
    return latencies_us[i] / 1000.0;
  }
};

uint32_t MicrosSince(Clock::time_point start) {
  return static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
}

// `connections` threads, each a keep-alive connection issuing `target` back to back.
Result DriveHttp(const std::string& name, const std::string& address, const std::string& target,
                 int connections, std::chrono::milliseconds warmup,
                 std::chrono::milliseconds duration) {
  std::vector<Result> parts(connections);
  std::atomic<bool> measuring{false};
  auto begin = Clock::now();
  auto measure_from = begin + warmup;
  auto end = measure_from + duration;
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      auto conn = HttpConnection::Connect(address);
      Result& part = parts[c];
      part.latencies_us.reserve(200000);
      for (;;) {
        auto start = Clock::now();
        if (start >= end) break;
        if (!conn.ok()) {
          conn = HttpConnection::Connect(address);
          if (start >= measure_from) ++part.errors;
          continue;
        }
        auto r = conn->Request("GET", target);
        bool ok = r.ok() && r->status == 200;
        if (!r.ok()) conn = HttpConnection::Connect(address);
        if (start < measure_from) continue;
        measuring = true;
        if (ok) {
          ++part.ok;
          part.latencies_us.push_back(MicrosSince(start));
        } else {
          ++part.errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Result total;
  total.name = name;
  total.seconds = std::chrono::duration<double>(duration).count();
  for (auto& p : parts) {
    total.ok += p.ok;
    total.errors += p.errors;
    total.latencies_us.insert(total.latencies_us.end(), p.latencies_us.begin(),
                              p.latencies_us.end());
  }
  return total;
}

// `in_flight` GetEnvironment calls kept outstanding with the gRPC callback API.
class GrpcDriver {
 public:
  GrpcDriver(env::EnvironmentService::Stub* stub, int in_flight) : stub_(stub) {
    slots_.resize(in_flight);
  }

  Result Run(std::chrono::milliseconds warmup, std::chrono::milliseconds duration) {
    measure_from_ = Clock::now() + warmup;
    end_ = measure_from_ + duration;
    active_ = static_cast<int>(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i) Issue(i);
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return active_ == 0; });
    Result total;
    total.name = "direct gRPC GetEnvironment";
    total.seconds = std::chrono::duration<double>(duration).count();
    for (auto& s : slots_) {
      total.ok += s.ok;
      total.errors += s.errors;
      total.latencies_us.insert(total.latencies_us.end(), s.latencies_us.begin(),
                                s.latencies_us.end());
    }
    return total;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    env::GetEnvironmentRequest request;
    env::Environment response;
    Clock::time_point start;
  };

  void Issue(size_t slot) {
    auto start = Clock::now();
    if (start >= end_) {
      std::lock_guard lock(mu_);
      if (--active_ == 0) cv_.notify_all();
      return;
    }
    auto call = std::make_shared<Call>();
    call->start = start;
    call->request.set_name(kEnvironment);
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stub_->async()->GetEnvironment(&call->context, &call->request, &call->response,
                                   [this, slot, call](grpc::Status status) {
                                     Result& s = slots_[slot];
                                     if (call->start >= measure_from_) {
                                       if (status.ok()) {
                                         ++s.ok;
                                         s.latencies_us.push_back(MicrosSince(call->start));
                                       } else {
                                         ++s.errors;
                                       }
                                     }
                                     Issue(slot);
                                   });
  }

  env::EnvironmentService::Stub* stub_;
  std::vector<Result> slots_;  // each slot's calls run one after another
  Clock::time_point measure_from_;
  Clock::time_point end_;
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
};

void Print(Result& r) {
  std::printf("%-34s %10.0f req/s  p50 %7.3f ms  p99 %7.3f ms  (%llu ok, %llu errors)\n",
              r.name.c_str(), r.Rps(), r.PercentileMs(0.50), r.PercentileMs(0.99),
              static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.errors));
}

int Main(int argc, char** argv) {
  CLI::App app{"bench-gateway: REST through the gateway vs direct gRPC vs /healthz"};
  double seconds = 5;
  int connections = 32;
  std::string log_level = "warn";
  app.add_option("--duration", seconds, "Measured seconds per scenario")->capture_default_str();
  app.add_option("--connections", connections, "Concurrent connections / calls in flight")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "Log level of the started processes")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ::signal(SIGPIPE, SIG_IGN);

  auto& pg = submarine::testing::TestPostgres::Get();
  std::string db = pg.CreateDatabase("benchgw");
  std::string dir = submarine::testing::MakeTempDir("bench-gateway");
  std::string env_yaml = absl::StrCat(
      "server:\n  grpc_listen: 127.0.0.1:0\n  log: {level: ", log_level, "}\n",
      "database: {host: ", pg.socket_dir(), ", port: ", pg.port(), ", dbname: ", db,
      ", user: postgres, schema: environment}\n", "events: {publish_endpoint: \"\"}\n");
  submarine::testing::ReadyInfo env_ready;
  auto environment = submarine::testing::StartService("submarine-environment", dir, "environment",
                                                      env_yaml, &env_ready);
  if (!environment.ok()) {
    std::fprintf(stderr, "submarine-environment: %s\n", environment.status().ToString().c_str());
    return 1;
  }
  std::string gw_yaml =
      absl::StrCat("http_listen: 127.0.0.1:0\ngrpc_listen: 127.0.0.1:0\n",
                   "backends:\n  - address: ", env_ready.grpc,
                   "\n    services: [submarine.environment.v1.EnvironmentService, "
                   "submarine.environment.v1.SubmarineEnvironmentApi]\n",
                   "server:\n  log: {level: ", log_level, "}\n");
  submarine::testing::ReadyInfo gw_ready;
  auto gateway =
      submarine::testing::StartService("submarine-gateway", dir, "gateway", gw_yaml, &gw_ready);
  if (!gateway.ok()) {
    std::fprintf(stderr, "submarine-gateway: %s\n", gateway.status().ToString().c_str());
    return 1;
  }
  auto created = submarine::testing::HttpCall(
      gw_ready.http, "POST", "/v1/projects/default/environments?environmentId=bench",
      R"({"image":"apache/submarine:jupyter-notebook-0.8.0","kernelSpec":{"name":"py3"}})",
      {{"Content-Type", "application/json"}});
  if (!created.ok() || created->status != 200) {
    std::fprintf(stderr, "creating the environment failed: %s\n",
                 created.ok() ? created->body.c_str() : created.status().ToString().c_str());
    return 1;
  }

  auto duration = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  auto warmup = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(1000), duration / 5);
  std::printf(
      "bench-gateway: %d connections, %.1f s per scenario (+%lld ms warm-up), %u cores, "
      "log level %s\n",
      connections, seconds, static_cast<long long>(warmup.count()),
      std::thread::hardware_concurrency(), log_level.c_str());

  Result baseline = DriveHttp("gateway GET /healthz (baseline)", gw_ready.http, "/healthz",
                              connections, warmup, duration);
  Print(baseline);
  Result rest = DriveHttp("gateway REST GetEnvironment", gw_ready.http,
                          absl::StrCat("/v1/", kEnvironment), connections, warmup, duration);
  Print(rest);
  auto channel = grpc::CreateChannel(env_ready.grpc, grpc::InsecureChannelCredentials());
  auto stub = env::EnvironmentService::NewStub(channel);
  GrpcDriver driver(stub.get(), connections);
  Result direct = driver.Run(warmup, duration);
  Print(direct);

  double throughput_ratio = direct.Rps() > 0 ? rest.Rps() / direct.Rps() : 0;
  double p99 = rest.PercentileMs(0.99);
  std::printf("ratio gateway/direct-gRPC throughput: %.1f %% (goal >= 50 %%)\n",
              100 * throughput_ratio);
  std::printf("ratio gateway/healthz throughput:     %.1f %%\n",
              baseline.Rps() > 0 ? 100 * rest.Rps() / baseline.Rps() : 0);
  std::printf("gateway REST p99: %.3f ms (goal < 10 ms); added p50 over direct: %.3f ms\n", p99,
              rest.PercentileMs(0.5) - direct.PercentileMs(0.5));

  gateway->Signal(SIGTERM);
  environment->Signal(SIGTERM);
  gateway->Wait();
  environment->Wait();
  return 0;
}

}  // namespace
}  // namespace submarine::bench

int main(int argc, char** argv) { return submarine::bench::Main(argc, argv); }
