// bench-reconcile: does the experiment service keep up with 10,000 running jobs on Kubernetes?
// In one run, against real processes (a throwaway PostgreSQL, submarine-experiment) and the fake
// Kubernetes API server of tests/support/fake_kube (pods are not run: the benchmark plays the
// kubelet by writing pod status, as a real cluster's kubelets would):
//   1. N experiments (default 10,000) are created on the Kubernetes cluster; the controller
//      admits and submits them (a ConfigMap, a Service and a Job each; the fake's Job controller
//      makes the pods), and the benchmark marks every pod Running, then waits until PostgreSQL
//      says all N are RUNNING;
//   2. steady state: the mean and worst time of one full control pass (every unfinished
//      experiment read from PostgreSQL, every workload observed from the informers' copy), from
//      the service's submarine_leader_loop_seconds histogram, over a fixed window;
//   3. lag: one pod at a time is marked Succeeded; the time until its experiment is SUCCEEDED in
//      PostgreSQL, p50/p99/max over K samples.
// Baseline measured in the same run: one LIST of the N pods straight from the API server (the
// least a controller without a watch cache would pay per pass). Goal (issue 9): lag < 1 s at
// 10,000 jobs. Printed, never asserted.

#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/experiment/experiment_fixture.h"
#include "tests/support/fake_kube/fake_kube_apiserver.h"
#include "tests/support/http_client.h"

namespace submarine::bench {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace v1 = submarine::experiment::v1;

constexpr char kNamespace[] = "bench";
constexpr char kPods[] = "/api/v1/namespaces/bench/pods";

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string Now() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// The sum and count of the control loop's pass-time histogram, from the service's /metrics.
struct PassTimes {
  double sum = 0;
  double count = 0;
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
};

PassTimes ReadPassTimes(const std::string& metrics_address) {
  PassTimes out;
  auto got = testing::HttpCall(metrics_address, "GET", "/metrics");
  if (!got.ok()) return out;
  for (absl::string_view line : absl::StrSplit(got->body, '\n')) {
    if (!absl::StrContains(line, "submarine_leader_loop_seconds") ||
        !absl::StrContains(line, "loop=\"controller\"")) {
      continue;
    }
    const size_t space = line.rfind(' ');
    double value = 0;
    if (!absl::SimpleAtod(line.substr(space + 1), &value)) continue;
    if (absl::StrContains(line, "_sum")) out.sum = value;
    if (absl::StrContains(line, "_count")) out.count = value;
    const size_t le = line.find("le=\"");
    if (le != absl::string_view::npos) {
      absl::string_view bound = line.substr(le + 4, line.find('"', le + 4) - le - 4);
      double b = 0;
      if (bound == "+Inf") b = 1e9;
      if (bound == "+Inf" || absl::SimpleAtod(bound, &b)) out.buckets.emplace_back(b, value);
    }
  }
  return out;
}

// The smallest bucket bound holding every pass observed between `before` and `after`.
double WorstBound(const PassTimes& before, const PassTimes& after) {
  const double total = after.count - before.count;
  for (size_t i = 0; i < after.buckets.size(); ++i) {
    const double prior = i < before.buckets.size() ? before.buckets[i].second : 0;
    if (after.buckets[i].second - prior >= total) return after.buckets[i].first;
  }
  return 0;
}

std::map<std::string, int64_t> CountStates(pqxx::connection& db) {
  pqxx::work tx(db);
  std::map<std::string, int64_t> out;
  for (const auto& row : tx.exec("SELECT state, count(*) FROM experiment.experiments GROUP BY 1")) {
    out[row[0].as<std::string>()] = row[1].as<int64_t>();
  }
  return out;
}

std::string StateOfWorkload(pqxx::connection& db, const std::string& workload) {
  pqxx::work tx(db);
  auto r =
      tx.exec_params("SELECT state FROM experiment.experiments WHERE workload_id = $1", workload);
  return r.empty() ? "" : r[0][0].as<std::string>();
}

std::string States(const std::map<std::string, int64_t>& states) {
  std::string s;
  for (const auto& [k, v] : states) absl::StrAppend(&s, s.empty() ? "" : ", ", k, " ", v);
  return s;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

int Main(int argc, char** argv) {
  CLI::App app{"bench-reconcile: the experiment controller at N running Kubernetes jobs"};
  int jobs = 10000;
  int samples = 30;
  int window_seconds = 10;
  int clients = 8;
  app.add_option("--jobs", jobs, "Experiments running at once")->check(CLI::Range(1, 100000));
  app.add_option("--samples", samples, "Condition changes timed")->check(CLI::Range(1, 1000));
  app.add_option("--window", window_seconds, "Seconds of steady state whose passes are timed");
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they happen

  const std::string dir = testing::MakeTempDir("bench-reconcile");
  testing::FakeKubeOptions options;
  options.run_pods = false;
  options.watch_history = static_cast<size_t>(jobs) * 8;
  auto kube_or = testing::FakeKubeApiServer::Start(options);
  if (!kube_or.ok()) {
    std::fprintf(stderr, "fake API server: %s\n", kube_or.status().ToString().c_str());
    return 1;
  }
  auto& kube = **kube_or;
  (void)kube.Create(
      "/api/v1/namespaces",
      {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNamespace}}}});
  const std::string kubeconfig = dir + "/kubeconfig";
  if (!kube.WriteKubeconfig(kubeconfig, kNamespace).ok()) return 1;
  auto svc_or = testing::StartExperimentService(
      nullptr,
      absl::StrCat("kubernetes:\n  - name: kubernetes\n    kubeconfig: ", kubeconfig,
                   "\n    default_image: registry.example/train:1\n    logs_dir: ", dir,
                   "/k8s-logs\n"),
      /*control_interval_ms=*/0);
  if (!svc_or.ok()) {
    std::fprintf(stderr, "experiment service: %s\n", svc_or.status().ToString().c_str());
    return 1;
  }
  auto& svc = **svc_or;
  pqxx::connection db(testing::TestPostgres::Get().ConnInfo(svc.dbname));

  // 1. N experiments, created by `clients` threads.
  auto t_create = Clock::now();
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      for (int i = next++; i < jobs; i = next++) {
        v1::CreateExperimentRequest req;
        req.set_parent("projects/p");
        auto* spec = req.mutable_experiment()->mutable_spec();
        spec->mutable_meta()->set_cmd("python train.py");
        spec->set_compute_cluster("kubernetes");
        (*spec->mutable_spec())["Worker"].set_replicas(1);
        v1::Experiment out;
        if (!svc.stub->CreateExperiment(testing::ExperimentCtx().get(), req, &out).ok()) ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double create_s = MsSince(t_create) / 1000;
  std::printf("created %d experiments in %.1f s (%d failed)\n", jobs, create_s, failed.load());

  // The controller submits them; the fake's Job controller makes one pod each.
  auto t_submit = Clock::now();
  json pods;
  while (true) {
    auto listed = kube.List(kPods);
    if (listed.ok() && static_cast<int>((*listed)["items"].size()) >= jobs - failed) {
      pods = std::move((*listed)["items"]);
      break;
    }
    if (MsSince(t_submit) > 1800e3) {
      std::fprintf(stderr, "only %zu pods after 30 min: %s\n",
                   listed.ok() ? (*listed)["items"].size() : 0, States(CountStates(db)).c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // progress poll, not a sync
  }
  const double submit_s = MsSince(t_submit) / 1000;
  std::printf("all %zu pods exist %.1f s later\n", pods.size(), submit_s);

  // The kubelet's part: every pod runs.
  auto t_run = Clock::now();
  for (const json& pod : pods) {
    const std::string name = pod["metadata"]["name"];
    (void)kube.MergePatchStatus(absl::StrCat(kPods, "/", name),
                                {{"status",
                                  {{"phase", "Running"},
                                   {"hostIP", "10.0.0.1"},
                                   {"containerStatuses",
                                    {{{"name", "task"},
                                      {"ready", true},
                                      {"state", {{"running", {{"startedAt", Now()}}}}}}}}}}});
  }
  while (CountStates(db)["RUNNING"] < jobs - failed) {
    if (MsSince(t_run) > 600e3) {
      std::fprintf(stderr, "not all RUNNING after 10 min: %s\n", States(CountStates(db)).c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // progress poll, not a sync
  }
  const double running_s = MsSince(t_run) / 1000;
  std::printf("all RUNNING in PostgreSQL %.1f s after their pods were marked running\n", running_s);

  // Baseline: one LIST of every pod from the API server, over HTTP as a controller would.
  std::vector<double> list_ms;
  for (int i = 0; i < 5; ++i) {
    auto t = Clock::now();
    auto got = testing::HttpCall(kube.url().substr(std::string("http://").size()), "GET", kPods);
    if (got.ok()) {
      json parsed = json::parse(got->body, nullptr, false);
      if (parsed.is_object()) list_ms.push_back(MsSince(t));
    }
  }

  // 2. Steady state: the passes of a fixed window.
  PassTimes before = ReadPassTimes(svc.ready.metrics);
  std::this_thread::sleep_for(std::chrono::seconds(window_seconds));  // the measuring window
  PassTimes after = ReadPassTimes(svc.ready.metrics);
  const double passes = after.count - before.count;
  const double mean_pass_ms = passes > 0 ? 1000 * (after.sum - before.sum) / passes : 0;
  const double worst_bound_ms = 1000 * WorstBound(before, after);

  // 3. Lag: one pod at a time ends; until its experiment is SUCCEEDED in PostgreSQL.
  std::vector<double> lag_ms;
  for (int k = 0; k < samples && k < static_cast<int>(pods.size()); ++k) {
    const json& pod = pods[static_cast<size_t>(k) * pods.size() / samples];
    const std::string name = pod["metadata"]["name"];
    const std::string workload = pod["metadata"]["labels"]["submarine.apache.org/workload"];
    auto t = Clock::now();
    (void)kube.MergePatchStatus(absl::StrCat(kPods, "/", name),
                                {{"status",
                                  {{"phase", "Succeeded"},
                                   {"containerStatuses",
                                    {{{"name", "task"},
                                      {"ready", false},
                                      {"state",
                                       {{"terminated",
                                         {{"exitCode", 0},
                                          {"reason", "Completed"},
                                          {"startedAt", Now()},
                                          {"finishedAt", Now()}}}}}}}}}}});
    while (StateOfWorkload(db, workload) != "SUCCEEDED" && MsSince(t) < 60000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polling resolution
    }
    lag_ms.push_back(MsSince(t));
  }

  const double list_p50 = Percentile(list_ms, 0.5);
  std::printf("\nbench-reconcile: %d experiments running on the fake Kubernetes cluster\n", jobs);
  std::printf("%-58s %10s\n", "figure", "ms");
  std::printf("%-58s %10.1f\n", "LIST of every pod over HTTP, parsed (baseline, p50)", list_p50);
  std::printf("%-58s %10.1f   (%.0f passes in %d s)\n", "control pass, mean", mean_pass_ms, passes,
              window_seconds);
  std::printf("%-58s %10.0f\n", "control pass, worst (histogram bucket bound)", worst_bound_ms);
  std::printf("%-58s %10.1f\n", "pod Succeeded -> experiment SUCCEEDED stored, p50",
              Percentile(lag_ms, 0.5));
  std::printf("%-58s %10.1f\n", "pod Succeeded -> experiment SUCCEEDED stored, p99",
              Percentile(lag_ms, 0.99));
  std::printf("%-58s %10.1f\n", "pod Succeeded -> experiment SUCCEEDED stored, max",
              Percentile(lag_ms, 1.0));
  std::printf("mean pass / pod LIST: %.1fx ; lag goal < 1000 ms at %d jobs: %s\n",
              list_p50 > 0 ? mean_pass_ms / list_p50 : 0, jobs,
              Percentile(lag_ms, 1.0) < 1000 ? "met" : "NOT met");
  std::printf("setup: create %.1f s, submit %.1f s, running %.1f s\n", create_s, submit_s,
              running_s);
  return 0;
}

}  // namespace
}  // namespace submarine::bench

int main(int argc, char** argv) { return submarine::bench::Main(argc, argv); }
