// bench-gateway: what the REST gateway costs. In one run, on one machine, against real processes
// (a throwaway PostgreSQL, submarine-environment, submarine-gateway) it measures for a fixed
// duration with N concurrent keep-alive clients:
//   1. baseline:   the gateway's own GET /healthz (HTTP server cost only)
//   2. gateway:    GET /v1/projects/default/environments/bench (REST -> gRPC -> PostgreSQL)
//   3. direct:     the same GetEnvironment as gRPC straight to the service, N calls in flight
//   4. auth off/on: the same REST GetEnvironment through two gateways, one with authentication
//      off and one verifying a bearer token (Ed25519 JWT) against a token state served by an
//      in-process stand-in for the permission service, alternated over two rounds
// and prints requests/s, p50/p99 latency and the ratios (goals: gateway >= 50 % of direct
// throughput, gateway p99 < 10 ms, auth on >= 90 % of auth off), plus the cost of one token
// verification measured in this process. Printed, never asserted.
//
// "auth on" includes the environment service's own permission check (common/authz with its
// cache, answered by an in-process stand-in of AccessService on a miss); "auth off" fronts an
// environment service of the same schema running without authorization.

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
#include "common/auth/crypto.h"
#include "common/config/config.h"
#include "gateway/auth_state.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "tests/integration/gateway/permission_backend.h"
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
                 std::chrono::milliseconds duration,
                 const std::vector<std::pair<std::string, std::string>>& headers = {}) {
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
        auto r = conn->Request("GET", target, "", headers);
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

// Sums two measurements of the same scenario.
Result Merge(Result a, const Result& b) {
  a.seconds += b.seconds;
  a.ok += b.ok;
  a.errors += b.errors;
  a.latencies_us.insert(a.latencies_us.end(), b.latencies_us.begin(), b.latencies_us.end());
  return a;
}

// Microseconds per check of a valid token in this process: the full JWT verification
// (signature, JSON) and the gateway's AuthSnapshot::Authenticate of a token it has seen before.
struct VerifyCost {
  double full_us = -1;
  double remembered_us = -1;
};
VerifyCost MeasureVerification(const submarine::permission::v1::AuthState& state,
                               const auth::SigningKey& key, const std::string& header) {
  VerifyCost cost;
  auto snapshot = gateway::AuthSnapshot::Build(state);
  if (!snapshot.ok()) return cost;
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  constexpr int kRounds = 20000;
  std::string token = header.substr(header.find(' ') + 1);
  auth::JwtVerifier verifier;
  verifier.SetKeys({{key.key_id, key.public_key}});
  int ok = 0;
  auto start = Clock::now();
  for (int i = 0; i < kRounds; ++i) ok += verifier.Verify(token, state.issuer(), now).ok() ? 1 : 0;
  if (ok == kRounds) {
    cost.full_us =
        std::chrono::duration<double, std::micro>(Clock::now() - start).count() / kRounds;
  }
  ok = 0;
  start = Clock::now();
  for (int i = 0; i < kRounds; ++i) ok += (*snapshot)->Authenticate(header, now).ok() ? 1 : 0;
  if (ok == kRounds) {
    cost.remembered_us =
        std::chrono::duration<double, std::micro>(Clock::now() - start).count() / kRounds;
  }
  return cost;
}

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
      ", user: postgres, schema: environment}\n", "events: {publish_endpoint: \"\"}\n", "permission: {insecure_no_authorization: true}\n");
  submarine::testing::ReadyInfo env_ready;
  auto environment = submarine::testing::StartService("submarine-environment", dir, "environment",
                                                      env_yaml, &env_ready);
  if (!environment.ok()) {
    std::fprintf(stderr, "submarine-environment: %s\n", environment.status().ToString().c_str());
    return 1;
  }
  std::string backends =
      absl::StrCat("backends:\n  - address: ", env_ready.grpc,
                   "\n    services: [submarine.environment.v1.EnvironmentService, "
                   "submarine.environment.v1.SubmarineEnvironmentApi]\n");
  std::string gw_yaml = absl::StrCat("http_listen: 127.0.0.1:0\ngrpc_listen: 127.0.0.1:0\n",
                                     backends, "auth: {insecure_no_authorization: true}\n",
                                     "server:\n  log: {level: ", log_level, "}\n");
  submarine::testing::ReadyInfo gw_ready;
  auto gateway =
      submarine::testing::StartService("submarine-gateway", dir, "gateway", gw_yaml, &gw_ready);
  if (!gateway.ok()) {
    std::fprintf(stderr, "submarine-gateway: %s\n", gateway.status().ToString().c_str());
    return 1;
  }
  // The authenticating gateway: its token state comes from an in-process stand-in for the
  // permission service (the gateway verifies tokens locally; the state is fetched once).
  auth::InitSodium();
  std::string secret = auth::RandomToken(36);
  std::string secret_file = absl::StrCat(dir, "/gateway.secret");
  if (!config::WriteFileAtomic(secret_file, secret, 0600).ok()) return 1;
  auth::SigningKey key = auth::GenerateSigningKey();
  submarine::permission::v1::AuthState state;
  state.set_issuer("submarine");
  state.add_signing_keys()->set_key_id(key.key_id);
  state.mutable_signing_keys(0)->set_public_key(key.public_key);
  for (int i = 0; i < 1000; ++i) {
    state.add_revoked_tokens()->set_token_id(absl::StrCat("revoked-", i));  // a realistic list
  }
  submarine::testing::PermissionBackend permission(secret);
  permission.SetState(state);
  auto permission_address = permission.Start();
  if (!permission_address.ok()) return 1;
  // Behind the authenticating gateway, a second environment service (same schema) that
  // authorizes every call through common/authz: the first check of each (user, resource) asks
  // the permission stand-in, later ones are answered by the cache.
  std::string env_authz_yaml = absl::StrCat(
      "server:\n  grpc_listen: 127.0.0.1:0\n  log: {level: ", log_level,
      "}\n  gateway_secret_file: ", secret_file, "\n",
      "database: {host: ", pg.socket_dir(), ", port: ", pg.port(), ", dbname: ", db,
      ", user: postgres, schema: environment}\n", "events: {publish_endpoint: \"\"}\n",
      "permission: {address: \"", *permission_address, "\", cache_ttl_ms: 600000}\n");
  submarine::testing::ReadyInfo env_authz_ready;
  auto environment_authz = submarine::testing::StartService(
      "submarine-environment", dir, "environment-authz", env_authz_yaml, &env_authz_ready);
  if (!environment_authz.ok()) {
    std::fprintf(stderr, "submarine-environment (authz): %s\n",
                 environment_authz.status().ToString().c_str());
    return 1;
  }
  std::string authz_backends =
      absl::StrCat("backends:\n  - address: ", env_authz_ready.grpc,
                   "\n    services: [submarine.environment.v1.EnvironmentService, "
                   "submarine.environment.v1.SubmarineEnvironmentApi]\n");
  std::string auth_yaml = absl::StrCat(
      "http_listen: 127.0.0.1:0\ngrpc_listen: 127.0.0.1:0\n", authz_backends,
      "auth: {address: \"", *permission_address, "\"}\n", "server:\n  log: {level: ", log_level,
      "}\n  gateway_secret_file: ", secret_file, "\n");
  submarine::testing::ReadyInfo auth_ready;
  auto auth_gateway = submarine::testing::StartService("submarine-gateway", dir, "gateway-auth",
                                                       auth_yaml, &auth_ready);
  if (!auth_gateway.ok()) {
    std::fprintf(stderr, "submarine-gateway (auth): %s\n", auth_gateway.status().ToString().c_str());
    return 1;
  }
  auth::TokenClaims claims;
  claims.issuer = "submarine";
  claims.subject = "bench";
  claims.token_id = "bench-token";
  claims.kind = "api";
  claims.teams = {"ml"};
  claims.issued_at = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  std::vector<std::pair<std::string, std::string>> bearer = {
      {"Authorization", absl::StrCat("Bearer ", auth::SignJwt(claims, key))}};
  if (!submarine::testing::WaitFor([&] {
        auto r = submarine::testing::HttpCall(auth_ready.http, "GET", "/readyz");
        return r.ok() && r->status == 200;
      })) {
    std::fprintf(stderr, "the authenticating gateway never became ready\n");
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

  // Auth off and on alternate, so drift of the machine (other load, PostgreSQL caches) hits both.
  std::string target = absl::StrCat("/v1/", kEnvironment);
  Result off, on;
  for (int round = 0; round < 2; ++round) {
    Result a = DriveHttp("REST GetEnvironment, auth off", gw_ready.http, target, connections,
                         warmup, duration / 2);
    Result b = DriveHttp("REST GetEnvironment, auth on", auth_ready.http, target, connections,
                         warmup, duration / 2, bearer);
    off = round == 0 ? a : Merge(std::move(off), a);
    on = round == 0 ? b : Merge(std::move(on), b);
  }
  Print(off);
  Print(on);

  double throughput_ratio = direct.Rps() > 0 ? rest.Rps() / direct.Rps() : 0;
  double p99 = rest.PercentileMs(0.99);
  std::printf("ratio gateway/direct-gRPC throughput: %.1f %% (goal >= 50 %%)\n",
              100 * throughput_ratio);
  std::printf("ratio gateway/healthz throughput:     %.1f %%\n",
              baseline.Rps() > 0 ? 100 * rest.Rps() / baseline.Rps() : 0);
  std::printf("gateway REST p99: %.3f ms (goal < 10 ms); added p50 over direct: %.3f ms\n", p99,
              rest.PercentileMs(0.5) - direct.PercentileMs(0.5));

  double auth_ratio = off.Rps() > 0 ? on.Rps() / off.Rps() : 0;
  std::printf("ratio auth on/off throughput:         %.1f %% (goal >= 90 %%); p50 %+.3f ms, "
              "p99 %+.3f ms\n",
              100 * auth_ratio, on.PercentileMs(0.5) - off.PercentileMs(0.5),
              on.PercentileMs(0.99) - off.PercentileMs(0.99));
  VerifyCost cost = MeasureVerification(state, key, bearer[0].second);
  std::printf("token check: full JWT verification %.1f us; remembered token + state checks "
              "(1000 revoked ids) %.2f us\n",
              cost.full_us, cost.remembered_us);

  gateway->Signal(SIGTERM);
  std::printf("permission checks that missed the cache:  %d\n", permission.check_calls());
  auth_gateway->Signal(SIGTERM);
  environment_authz->Signal(SIGTERM);
  environment->Signal(SIGTERM);
  gateway->Wait();
  auth_gateway->Wait();
  environment_authz->Wait();
  environment->Wait();
  return 0;
}

}  // namespace
}  // namespace submarine::bench

int main(int argc, char** argv) { return submarine::bench::Main(argc, argv); }
