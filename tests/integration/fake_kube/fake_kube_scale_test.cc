// The fake API server at the size of the reconciler benchmark: 10,000 Jobs (and their 10,000
// pods, run_pods=false) created over HTTP. Checks that lists, pages and watches stay complete
// and correct at that size, and prints what they cost, each beside a baseline measured in the
// same run (no timed assertions):
//   - a full LIST of the Jobs, against the client's own json::parse of that answer;
//   - watch latency (status write → event received), against a GET /version round trip;
//   - MergePatchStatus of every pod, per write.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/integration/fake_kube/kube_test_client.h"
#include "tests/support/fake_kube/fake_kube_apiserver.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace submarine::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kJobs = 10000;
constexpr char kJobsPath[] = "/apis/batch/v1/namespaces/default/jobs";
constexpr char kPodsPath[] = "/api/v1/namespaces/default/pods";

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

TEST(FakeKubeScaleTest, TenThousandJobsListPageAndWatch) {
  auto started = FakeKubeApiServer::Start({.run_pods = false});
  ASSERT_TRUE(started.ok()) << started.status();
  auto& kube = *started;
  const std::string address = kube->url().substr(std::string("http://").size());
  auto connection = HttpConnection::Connect(address);
  ASSERT_TRUE(connection.ok());

  auto t0 = Clock::now();
  for (int i = 0; i < kJobs; ++i) {
    json container = {{"name", "main"},
                      {"image", "python:3.11"},
                      {"command", {"python3", "train.py", "--epochs=1"}},
                      {"env", {{{"name", "SUBMARINE_EXPERIMENT"}, {"value", absl::StrCat(i)}}}},
                      {"resources", {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}}}};
    json pod_spec = {{"restartPolicy", "Never"}, {"containers", json::array({container})}};
    json job = {{"apiVersion", "batch/v1"},
                {"kind", "Job"},
                {"metadata",
                 {{"name", absl::StrCat("exp-", 100000 + i)},
                  {"labels", {{"submarine.experiment", absl::StrCat("e", i % 100)}}}}},
                {"spec",
                 {{"completionMode", "Indexed"},
                  {"completions", 1},
                  {"parallelism", 1},
                  {"backoffLimit", 0},
                  {"template", {{"spec", pod_spec}}}}}};
    auto created =
        connection->Request("POST", kJobsPath, job.dump(), {{"Content-Type", "application/json"}});
    ASSERT_TRUE(created.ok() && created->status == 201)
        << (created.ok() ? created->body : std::string(created.status().message()));
  }
  const double create_ms = Ms(Clock::now() - t0);
  // The Job controller makes one pod per Job.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto page = kube->List(absl::StrCat(kPodsPath, "?limit=1"));
        return page.ok() &&
               page->value("metadata", json::object()).value("remainingItemCount", 0) == kJobs - 1;
      },
      std::chrono::seconds(240)));
  const double settle_ms = Ms(Clock::now() - t0);

  // A full LIST, five times; the answer parsed by the client as the baseline.
  std::vector<double> list_ms, parse_ms;
  size_t bytes = 0;
  for (int round = 0; round < 5; ++round) {
    auto start = Clock::now();
    auto list = connection->Request("GET", kJobsPath);
    list_ms.push_back(Ms(Clock::now() - start));
    ASSERT_TRUE(list.ok() && list->status == 200);
    bytes = list->body.size();
    start = Clock::now();
    json parsed = json::parse(list->body);
    parse_ms.push_back(Ms(Clock::now() - start));
    ASSERT_EQ(parsed["items"].size(), static_cast<size_t>(kJobs));
    EXPECT_EQ(parsed["items"][0]["metadata"]["name"], "exp-100000");
    EXPECT_EQ(parsed["items"][kJobs - 1]["metadata"]["name"],
              absl::StrCat("exp-", 100000 + kJobs - 1));
  }

  // Pages of 500 cover every Job once.
  auto start = Clock::now();
  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = connection->Request(
        "GET", absl::StrCat(kJobsPath, "?limit=500", token.empty() ? "" : "&continue=" + token));
    ASSERT_TRUE(page.ok() && page->status == 200);
    json parsed = json::parse(page->body);
    for (const auto& item : parsed["items"]) seen.insert(item["metadata"]["name"]);
    token = parsed["metadata"].value("continue", "");
    ++pages;
  } while (!token.empty());
  const double paged_ms = Ms(Clock::now() - start);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(pages, kJobs / 500);

  // A label-selected LIST (1% of the Jobs).
  start = Clock::now();
  auto selected = connection->Request(
      "GET", absl::StrCat(kJobsPath, "?labelSelector=submarine.experiment%3De7"));
  const double selected_ms = Ms(Clock::now() - start);
  ASSERT_TRUE(selected.ok());
  EXPECT_EQ(json::parse(selected->body)["items"].size(), static_cast<size_t>(kJobs / 100));

  // Watch latency: a status write, then its event on a watch from the list's version.
  const std::string rv = kube->List(absl::StrCat(kJobsPath, "?limit=1"))
                             .value()["metadata"]["resourceVersion"]
                             .get<std::string>();
  auto watch =
      StreamReader::Open(address, absl::StrCat(kJobsPath, "?watch=1&resourceVersion=", rv));
  ASSERT_TRUE(watch.ok());
  std::vector<double> watch_ms, version_ms;
  for (int i = 0; i < 200; ++i) {
    const std::string name = absl::StrCat("exp-", 100000 + (i * 37) % kJobs);
    auto begin = Clock::now();
    ASSERT_TRUE(kube->MergePatchStatus(absl::StrCat(kJobsPath, "/", name),
                                       json{{"status", {{"ready", i + 100}}}})
                    .ok());
    std::optional<json> event;
    while ((event = watch->NextEvent(std::chrono::seconds(10)))) {
      if ((*event)["object"]["metadata"]["name"] == name &&
          (*event)["object"]["status"].value("ready", 0) == i + 100) {
        break;
      }
    }
    ASSERT_TRUE(event.has_value()) << "no event for " << name;
    watch_ms.push_back(Ms(Clock::now() - begin));
    begin = Clock::now();
    ASSERT_TRUE(connection->Request("GET", "/version").ok());
    version_ms.push_back(Ms(Clock::now() - begin));
  }

  // Every pod to Running, as a scripted kubelet would.
  auto pods = kube->List(kPodsPath);
  ASSERT_TRUE(pods.ok());
  ASSERT_EQ((*pods)["items"].size(), static_cast<size_t>(kJobs));
  start = Clock::now();
  for (const auto& pod : (*pods)["items"]) {
    auto patched = kube->MergePatchStatus(
        absl::StrCat(kPodsPath, "/", pod["metadata"]["name"].get<std::string>()),
        json{{"status", {{"phase", "Running"}}}});
    ASSERT_TRUE(patched.ok()) << patched.status();
  }
  const double patch_ms = Ms(Clock::now() - start);

  std::printf(
      "\nfake kube at %d Jobs + %d pods (run_pods=false):\n"
      "  create %d Jobs over one HTTP connection: %.0f ms (%.3f ms each); all pods made after "
      "%.0f ms\n"
      "  LIST all Jobs (%.1f MB): median %.1f ms; client json::parse of it (baseline): median "
      "%.1f ms; ratio %.2f\n"
      "  LIST in %d pages of 500: %.1f ms; label-selected LIST (%d Jobs): %.1f ms\n"
      "  watch latency (status write -> event): median %.3f ms, p99 %.3f ms; GET /version round "
      "trip (baseline): median %.3f ms; ratio %.2f\n"
      "  MergePatchStatus of %d pods: %.0f ms (%.3f ms each)\n",
      kJobs, kJobs, kJobs, create_ms, create_ms / kJobs, settle_ms, bytes / 1e6, Median(list_ms),
      Median(parse_ms), Median(list_ms) / Median(parse_ms), pages, paged_ms, kJobs / 100,
      selected_ms, Median(watch_ms), Percentile(watch_ms, 0.99), Median(version_ms),
      Median(watch_ms) / Median(version_ms), kJobs, patch_ms, patch_ms / kJobs);
}

}  // namespace
}  // namespace submarine::testing
