// The fake Kubernetes API server against the Kubernetes API conventions: what a client sees over
// HTTP (status codes, Status objects, resourceVersions, watches) and what the simulated Job
// controller, kubelet and Trainer controller do with real processes.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/fake_kube/kube_test_client.h"
#include "tests/support/fake_kube/api_errors.h"
#include "tests/support/fake_kube/fake_kube_apiserver.h"
#include "tests/support/process.h"

namespace submarine::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
namespace fs = std::filesystem;

constexpr char kConfigMaps[] = "/api/v1/namespaces/default/configmaps";
constexpr char kPods[] = "/api/v1/namespaces/default/pods";
constexpr char kJobs[] = "/apis/batch/v1/namespaces/default/jobs";
constexpr char kTrainJobs[] = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/default/trainjobs";
constexpr char kRuntimes[] = "/apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes";
constexpr char kStatefulSets[] = "/apis/apps/v1/namespaces/default/statefulsets";
constexpr char kEvents[] = "/api/v1/namespaces/default/events";

int64_t Rv(const json& object) {
  int64_t rv = 0;
  EXPECT_TRUE(absl::SimpleAtoi(object["metadata"]["resourceVersion"].get<std::string>(), &rv))
      << object.dump();
  return rv;
}

json ConfigMap(const std::string& name, json labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"data", {{"k", "v"}}}};
}

json Container(const std::string& script) {
  return {{"name", "main"}, {"image", "busybox"}, {"command", {"/bin/sh", "-c", script}}};
}

json Pod(const std::string& name, const std::string& script, int64_t grace = 30) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"restartPolicy", "Never"},
            {"terminationGracePeriodSeconds", grace},
            {"containers", {Container(script)}}}}};
}

json IndexedJob(const std::string& name, const std::string& script, int completions,
                int parallelism, int backoff_limit, const std::string& restart = "Never") {
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"completionMode", "Indexed"},
            {"completions", completions},
            {"parallelism", parallelism},
            {"backoffLimit", backoff_limit},
            {"template",
             {{"spec", {{"restartPolicy", restart}, {"containers", {Container(script)}}}}}}}}};
}

// Null-safe reads of `object` at a JSON pointer ("/status/phase"): "" or 0 when absent.
std::string Str(const json& object, const std::string& pointer) {
  json::json_pointer ptr(pointer);
  return object.contains(ptr) && object.at(ptr).is_string() ? object.at(ptr).get<std::string>()
                                                            : "";
}

int64_t Int(const json& object, const std::string& pointer) {
  json::json_pointer ptr(pointer);
  return object.contains(ptr) && object.at(ptr).is_number_integer() ? object.at(ptr).get<int64_t>()
                                                                    : 0;
}

std::string Phase(const json& pod) { return Str(pod, "/status/phase"); }

const json* FindCondition(const json& object, const std::string& type) {
  json::json_pointer ptr("/status/conditions");
  if (!object.contains(ptr) || !object.at(ptr).is_array()) return nullptr;
  const json& conditions = object.at(ptr);
  for (const auto& c : conditions) {
    if (c.value("type", "") == type) return &c;
  }
  return nullptr;
}

bool HasCondition(const json& object, const std::string& type) {
  const json* c = FindCondition(object, type);
  return c && c->value("status", "") == "True";
}

class FakeKubeTest : public ::testing::Test {
 protected:
  void Start(FakeKubeOptions options = {}) {
    dir_ = MakeTempDir("fake-kube-test");
    options.work_dir = dir_;
    auto started = FakeKubeApiServer::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    kube_ = std::move(*started);
    address_ = kube_->url().substr(std::string("http://").size());
    token_ = options.bearer_token;
  }

  void TearDown() override {
    kube_.reset();
    if (!HasFailure() && !dir_.empty()) fs::remove_all(dir_);
  }

  KubeAnswer Call(const std::string& method, const std::string& target, const json& body = nullptr,
                  const std::string& content_type = "application/json") {
    return KubeCall(address_, method, target, body, content_type, token_);
  }

  json Create(const std::string& collection, const json& object) {
    auto answer = Call("POST", collection, object);
    EXPECT_EQ(answer.status, 201) << answer.raw;
    return answer.body;
  }

  absl::StatusOr<StreamReader> Watch(const std::string& target) {
    return StreamReader::Open(address_, target, token_);
  }

  // Polls the object at `path` until `done` holds (or it is gone, when `done` takes null),
  // with a deadline; returns the last state seen.
  json WaitObject(const std::string& path, const std::function<bool(const json&)>& done,
                  milliseconds timeout = seconds(30)) {
    json last;
    bool ok = WaitFor(
        [&] {
          auto got = kube_->Get(path);
          last = got.ok() ? *got : json();
          return done(last);
        },
        timeout);
    EXPECT_TRUE(ok) << "timed out waiting on " << path << "; last state: " << last.dump();
    return last;
  }

  std::vector<json> PodsOf(const std::string& job) {
    auto list = kube_->List(absl::StrCat(kPods, "?labelSelector=job-name%3D", job));
    EXPECT_TRUE(list.ok()) << list.status();
    std::vector<json> out;
    if (list.ok()) {
      for (const auto& item : (*list)["items"]) out.push_back(item);
    }
    return out;
  }

  std::string Log(const std::string& pod, const std::string& query = "") {
    auto answer = Call("GET", absl::StrCat(kPods, "/", pod, "/log", query));
    EXPECT_EQ(answer.status, 200) << answer.raw;
    return answer.raw;
  }

  std::string dir_;
  std::unique_ptr<FakeKubeApiServer> kube_;
  std::string address_;
  std::string token_;
};

// ---- discovery ------------------------------------------------------------------------------

TEST_F(FakeKubeTest, DiscoveryListsServedGroupsKindsAndSubresources) {
  Start({.serve_trainer = true, .serve_kueue = true, .run_pods = false});
  auto version = Call("GET", "/version");
  ASSERT_EQ(version.status, 200);
  EXPECT_EQ(version.body["gitVersion"], "v1.32.4");

  auto core = Call("GET", "/api/v1");
  ASSERT_EQ(core.status, 200) << core.raw;
  EXPECT_EQ(core.body["kind"], "APIResourceList");
  std::map<std::string, json> resources;
  for (const auto& r : core.body["resources"]) resources[r["name"]] = r;
  ASSERT_TRUE(resources.count("pods"));
  EXPECT_EQ(resources["pods"]["shortNames"], json({"po"}));
  EXPECT_EQ(resources["pods"]["singularName"], "pod");
  EXPECT_EQ(resources["pods"]["namespaced"], true);
  EXPECT_EQ(resources["pods/log"]["verbs"], json({"get"}));
  EXPECT_EQ(resources["pods/status"]["verbs"], json({"get", "patch", "update"}));
  EXPECT_EQ(resources["namespaces"]["namespaced"], false);
  for (const char* name : {"services", "events", "secrets", "configmaps"}) {
    EXPECT_TRUE(resources.count(name)) << name;
  }

  auto groups = Call("GET", "/apis");
  ASSERT_EQ(groups.status, 200);
  EXPECT_EQ(groups.body["kind"], "APIGroupList");
  std::set<std::string> names;
  for (const auto& g : groups.body["groups"]) names.insert(g["name"]);
  EXPECT_EQ(names,
            (std::set<std::string>{"apps", "batch", "trainer.kubeflow.org", "kueue.x-k8s.io"}));

  auto batch = Call("GET", "/apis/batch/v1");
  ASSERT_EQ(batch.status, 200);
  EXPECT_EQ(batch.body["groupVersion"], "batch/v1");
  EXPECT_EQ(batch.body["resources"][0]["name"], "jobs");
  EXPECT_EQ(batch.body["resources"][1]["name"], "jobs/status");

  auto trainer = Call("GET", "/apis/trainer.kubeflow.org/v1alpha1");
  ASSERT_EQ(trainer.status, 200);
  std::map<std::string, bool> namespaced;
  for (const auto& r : trainer.body["resources"]) namespaced[r["name"]] = r["namespaced"];
  EXPECT_TRUE(namespaced["trainjobs"]);
  EXPECT_FALSE(namespaced["clustertrainingruntimes"]);
  EXPECT_TRUE(namespaced.count("trainjobs/status"));

  auto aggregated = HttpCall(address_, "GET", "/apis", "",
                             {{"Accept",
                               "application/json;g=apidiscovery.k8s.io;v=v2;as="
                               "APIGroupDiscoveryList,application/json"}});
  ASSERT_TRUE(aggregated.ok());
  EXPECT_EQ(aggregated->Header("content-type"),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
  auto doc = json::parse(aggregated->body);
  EXPECT_EQ(doc["kind"], "APIGroupDiscoveryList");
  EXPECT_EQ(doc["items"][0]["metadata"]["name"], "apps");
  EXPECT_EQ(doc["items"][1]["metadata"]["name"], "batch");
  // The StatefulSet scale subresource names its autoscaling/v1 kind (kubectl scale needs it).
  const json& apps = doc["items"][0]["versions"][0]["resources"][0];
  EXPECT_EQ(apps["resource"], "statefulsets");
  EXPECT_EQ(apps["shortNames"], json({"sts"}));
  ASSERT_EQ(apps["subresources"].size(), 2u) << apps.dump();
  EXPECT_EQ(apps["subresources"][1]["subresource"], "scale");
  EXPECT_EQ(apps["subresources"][1]["responseKind"],
            json({{"group", "autoscaling"}, {"version", "v1"}, {"kind", "Scale"}}));

  auto apps_v1 = Call("GET", "/apis/apps/v1");
  ASSERT_EQ(apps_v1.status, 200);
  std::map<std::string, json> apps_resources;
  for (const auto& r : apps_v1.body["resources"]) apps_resources[r["name"]] = r;
  EXPECT_EQ(apps_resources["statefulsets"]["kind"], "StatefulSet");
  EXPECT_EQ(apps_resources["statefulsets"]["shortNames"], json({"sts"}));
  EXPECT_EQ(apps_resources["statefulsets/status"]["verbs"], json({"get", "patch", "update"}));
  EXPECT_EQ(apps_resources["statefulsets/scale"]["group"], "autoscaling");
  EXPECT_EQ(apps_resources["statefulsets/scale"]["version"], "v1");
  EXPECT_EQ(apps_resources["statefulsets/scale"]["kind"], "Scale");

  EXPECT_EQ(Call("GET", "/apis/nope.example.com/v1").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/widgets").status, 404);
}

TEST_F(FakeKubeTest, UnservedGroupsAreAbsentFromDiscovery) {
  Start({.run_pods = false});
  auto groups = Call("GET", "/apis");
  ASSERT_EQ(groups.status, 200);
  ASSERT_EQ(groups.body["groups"].size(), 2u) << groups.raw;
  EXPECT_EQ(groups.body["groups"][0]["name"], "apps");
  EXPECT_EQ(groups.body["groups"][1]["name"], "batch");
  EXPECT_EQ(Call("GET", kTrainJobs).status, 404);
  EXPECT_EQ(Call("GET", "/apis/metrics.k8s.io/v1beta1").status, 404);
  EXPECT_EQ(Call("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").status, 404);
}

// ---- resource metrics (metrics-server) ------------------------------------------------------

// A metrics-server quantity ("123456n", "5m", "2", "1234Ki", "3Mi", "1000") in base units.
double MetricsQuantity(const std::string& text) {
  static const std::map<std::string, double> kScale = {
      {"n", 1e-9}, {"u", 1e-6}, {"m", 1e-3},  {"", 1},         {"k", 1e3},
      {"M", 1e6},  {"G", 1e9},  {"Ki", 1024}, {"Mi", 1 << 20}, {"Gi", 1 << 30}};
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(text[digits]) || text[digits] == '.')) ++digits;
  double value = 0;
  auto it = kScale.find(text.substr(digits));
  if (digits == 0 || it == kScale.end() || !absl::SimpleAtod(text.substr(0, digits), &value)) {
    ADD_FAILURE() << "not a quantity: \"" << text << "\"";
    return -1;
  }
  return value * it->second;
}

TEST_F(FakeKubeTest, MetricsApiReportsWhatAPodsProcessesUse) {
  Start({.serve_metrics = true, .metrics_resolution_ms = 200});
  // Discovery names the read-only kinds, as metrics-server's APIService does.
  auto discovery = Call("GET", "/apis/metrics.k8s.io/v1beta1");
  ASSERT_EQ(discovery.status, 200) << discovery.raw;
  std::map<std::string, json> resources;
  for (const auto& r : discovery.body["resources"]) resources[r["name"]] = r;
  ASSERT_TRUE(resources.count("pods")) << discovery.raw;
  EXPECT_EQ(resources["pods"]["kind"], "PodMetrics");
  EXPECT_EQ(resources["pods"]["namespaced"], true);
  EXPECT_EQ(resources["pods"]["verbs"], json({"get", "list"}));
  EXPECT_EQ(resources["nodes"]["kind"], "NodeMetrics");
  EXPECT_EQ(resources["nodes"]["namespaced"], false);

  // Holds ~50 MiB (written, so resident) and burns CPU in a process of its own pod.
  json pod = Pod("burn",
                 "exec python3 -c \"b = b'x' * (50 << 20)\n"
                 "while True: pass\"");
  pod["metadata"]["labels"] = {{"app", "burn"}};
  Create(kPods, pod);
  Create(kPods, Pod("idle", "exec sleep 600"));
  const std::string list = "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods";
  json item;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto answer = Call("GET", list + "?labelSelector=app%3Dburn");
        if (answer.status != 200 || answer.body["items"].size() != 1) return false;
        item = answer.body["items"][0];
        const json& usage = item["containers"][0]["usage"];
        return MetricsQuantity(usage["memory"]) >= (50 << 20) &&
               MetricsQuantity(usage["cpu"]) > 0.2;
      },
      seconds(30)))
      << item.dump();
  EXPECT_EQ(item["metadata"]["name"], "burn");
  EXPECT_EQ(item["metadata"]["namespace"], "default");
  EXPECT_EQ(item["metadata"]["labels"]["app"], "burn");
  EXPECT_EQ(item["containers"][0]["name"], "main");
  const json& usage = item["containers"][0]["usage"];
  EXPECT_LT(MetricsQuantity(usage["memory"]), 200 << 20) << usage.dump();
  EXPECT_LE(MetricsQuantity(usage["cpu"]), 1.5) << usage.dump();  // one busy thread
  EXPECT_TRUE(absl::EndsWith(usage["cpu"].get<std::string>(), "n")) << usage.dump();
  EXPECT_FALSE(Str(item, "/timestamp").empty());
  EXPECT_TRUE(absl::EndsWith(Str(item, "/window"), "s")) << item.dump();

  // The selector leaves the idle pod out; without one it is there, using (almost) no CPU.
  auto all = Call("GET", list);
  ASSERT_EQ(all.status, 200) << all.raw;
  EXPECT_EQ(all.body["kind"], "PodMetricsList");
  EXPECT_EQ(all.body["apiVersion"], "metrics.k8s.io/v1beta1");
  auto idle = Call("GET", list + "/idle");
  ASSERT_EQ(idle.status, 200) << idle.raw;
  EXPECT_EQ(idle.body["kind"], "PodMetrics");
  EXPECT_LT(MetricsQuantity(idle.body["containers"][0]["usage"]["cpu"]), 0.1) << idle.raw;
  EXPECT_EQ(Call("GET", "/apis/metrics.k8s.io/v1beta1/pods").body["items"].size(), 2u);

  auto node = Call("GET", "/apis/metrics.k8s.io/v1beta1/nodes/fake-node");
  ASSERT_EQ(node.status, 200) << node.raw;
  EXPECT_GT(MetricsQuantity(node.body["usage"]["memory"]), 0) << node.raw;
  EXPECT_EQ(Call("GET", "/apis/metrics.k8s.io/v1beta1/nodes").body["items"].size(), 1u);

  // Read-only, no watch, and 404 for what is not reported.
  auto missing = Call("GET", list + "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body["reason"], "NotFound");
  EXPECT_EQ(Call("POST", list, item).status, 405);
  EXPECT_EQ(Call("DELETE", list + "/burn").status, 405);
  EXPECT_EQ(Call("GET", list + "?watch=1").status, 405);

  // A pod whose process ended is no longer reported.
  ASSERT_EQ(Call("DELETE", absl::StrCat(kPods, "/burn"), {{"gracePeriodSeconds", 0}}).status, 200);
  EXPECT_TRUE(WaitFor([&] { return Call("GET", list + "/burn").status == 404; }, seconds(30)));
}

// ---- CRUD and errors ------------------------------------------------------------------------

TEST_F(FakeKubeTest, CreateGetAndStatusErrorsCarryKubernetesCodesAndReasons) {
  Start({.run_pods = false});
  auto created = Call("POST", kConfigMaps, ConfigMap("one"));
  ASSERT_EQ(created.status, 201) << created.raw;
  const json& meta = created.body["metadata"];
  EXPECT_EQ(meta["namespace"], "default");
  EXPECT_EQ(meta["uid"].get<std::string>().size(), 36u);
  EXPECT_TRUE(meta.contains("creationTimestamp"));
  EXPECT_GT(Rv(created.body), 0);

  auto got = Call("GET", absl::StrCat(kConfigMaps, "/one"));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body, created.body);

  auto again = Call("POST", kConfigMaps, ConfigMap("one"));
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body["kind"], "Status");
  EXPECT_EQ(again.body["status"], "Failure");
  EXPECT_EQ(again.body["reason"], "AlreadyExists");
  EXPECT_EQ(again.body["code"], 409);
  EXPECT_EQ(again.body["message"], "configmaps \"one\" already exists");
  EXPECT_EQ(again.body["details"], json({{"name", "one"}, {"kind", "configmaps"}}));

  auto missing = Call("GET", absl::StrCat(kJobs, "/nope"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body["reason"], "NotFound");
  EXPECT_EQ(missing.body["message"], "jobs.batch \"nope\" not found");
  EXPECT_EQ(missing.body["details"]["group"], "batch");

  auto bad_name = Call("POST", kConfigMaps, ConfigMap("Bad_Name"));
  EXPECT_EQ(bad_name.status, 422);
  EXPECT_EQ(bad_name.body["reason"], "Invalid");
  EXPECT_TRUE(absl::StartsWith(bad_name.body["message"].get<std::string>(),
                               "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value"))
      << bad_name.raw;
  EXPECT_EQ(bad_name.body["details"]["causes"][0]["field"], "metadata.name");

  auto no_name = Call("POST", kConfigMaps, json{{"metadata", json::object()}});
  EXPECT_EQ(no_name.status, 422);
  EXPECT_TRUE(absl::StrContains(no_name.body["message"].get<std::string>(),
                                "name or generateName is required"));

  auto job_without_template =
      Call("POST", kJobs, json{{"metadata", {{"name", "empty"}}}, {"spec", json::object()}});
  EXPECT_EQ(job_without_template.status, 422) << job_without_template.raw;
  std::set<std::string> fields;
  for (const auto& c : job_without_template.body["details"]["causes"]) fields.insert(c["field"]);
  EXPECT_TRUE(fields.count("spec.template.spec.containers")) << job_without_template.raw;
  EXPECT_TRUE(fields.count("spec.template.spec.restartPolicy")) << job_without_template.raw;

  auto generated = Call("POST", kConfigMaps, json{{"metadata", {{"generateName", "gen-"}}}});
  ASSERT_EQ(generated.status, 201);
  std::string name = generated.body["metadata"]["name"];
  EXPECT_TRUE(absl::StartsWith(name, "gen-"));
  EXPECT_EQ(name.size(), 9u);

  auto no_namespace = Call("POST", "/api/v1/namespaces/elsewhere/configmaps", ConfigMap("x"));
  EXPECT_EQ(no_namespace.status, 404);
  EXPECT_EQ(no_namespace.body["message"], "namespaces \"elsewhere\" not found");

  auto wrong_kind =
      Call("POST", kConfigMaps,
           json{{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"metadata", {{"name", "x"}}}});
  EXPECT_EQ(wrong_kind.status, 400);
  EXPECT_EQ(wrong_kind.body["reason"], "BadRequest");

  EXPECT_EQ(Call("POST", absl::StrCat(kConfigMaps, "/one"), ConfigMap("one")).body["reason"],
            "MethodNotAllowed");
  EXPECT_EQ(Call("POST", "/apis/batch/v1/jobs", IndexedJob("j", "true", 1, 1, 0)).status, 405);

  // The direct accessors answer the same Status.
  auto direct = kube_->Get(absl::StrCat(kJobs, "/nope"));
  ASSERT_EQ(direct.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(direct.status().message(), "jobs.batch \"nope\" not found");
  EXPECT_EQ(fake_kube::StatusObject(direct.status())["reason"], "NotFound");
}

TEST_F(FakeKubeTest, PutWithStaleResourceVersionIsAConflict) {
  Start({.serve_trainer = true, .run_pods = false});
  json cm = Create(kConfigMaps, ConfigMap("cm"));
  json newer = cm;
  newer["data"]["k"] = "v2";
  auto updated = Call("PUT", absl::StrCat(kConfigMaps, "/cm"), newer);
  ASSERT_EQ(updated.status, 200) << updated.raw;
  EXPECT_GT(Rv(updated.body), Rv(cm));
  EXPECT_EQ(updated.body["data"]["k"], "v2");

  json stale = cm;  // still carries the first resourceVersion
  stale["data"]["k"] = "v3";
  auto conflict = Call("PUT", absl::StrCat(kConfigMaps, "/cm"), stale);
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.body["reason"], "Conflict");
  EXPECT_EQ(conflict.body["message"],
            "Operation cannot be fulfilled on configmaps \"cm\": the object has been modified; "
            "please apply your changes to the latest version and try again");
  EXPECT_EQ(kube_->Get(absl::StrCat(kConfigMaps, "/cm")).value()["data"]["k"], "v2");

  // Writing what is already stored changes no resourceVersion.
  auto same = Call("PUT", absl::StrCat(kConfigMaps, "/cm"), updated.body);
  ASSERT_EQ(same.status, 200);
  EXPECT_EQ(Rv(same.body), Rv(updated.body));

  // Custom resources need a resourceVersion on PUT.
  json runtime = {{"metadata", {{"name", "rt"}}}, {"spec", {{"mlPolicy", {{"numNodes", 1}}}}}};
  json created = Create(kRuntimes, runtime);
  json unconditional = created;
  unconditional["metadata"].erase("resourceVersion");
  auto invalid = Call("PUT", absl::StrCat(kRuntimes, "/rt"), unconditional);
  EXPECT_EQ(invalid.status, 422) << invalid.raw;
  EXPECT_TRUE(absl::StrContains(invalid.raw, "must be specified for an update"));

  EXPECT_EQ(Call("PUT", absl::StrCat(kConfigMaps, "/absent"), ConfigMap("absent")).status, 404);
  EXPECT_EQ(Call("PUT", absl::StrCat(kConfigMaps, "/cm"), ConfigMap("other")).status, 400);
}

TEST_F(FakeKubeTest, MergeJsonAndStrategicPatches) {
  Start({.serve_trainer = true, .run_pods = false});
  Create(kConfigMaps, ConfigMap("cm", {{"a", "1"}, {"b", "2"}}));
  const std::string path = absl::StrCat(kConfigMaps, "/cm");
  auto merged = Call("PATCH", path, json{{"metadata", {{"labels", {{"a", nullptr}, {"c", "3"}}}}}},
                     "application/merge-patch+json");
  ASSERT_EQ(merged.status, 200) << merged.raw;
  EXPECT_EQ(merged.body["metadata"]["labels"], json({{"b", "2"}, {"c", "3"}}));

  auto patched = Call("PATCH", path,
                      json::array({{{"op", "test"}, {"path", "/data/k"}, {"value", "v"}},
                                   {{"op", "replace"}, {"path", "/data/k"}, {"value", "w"}},
                                   {{"op", "add"}, {"path", "/data/n"}, {"value", "x"}}}),
                      "application/json-patch+json");
  ASSERT_EQ(patched.status, 200) << patched.raw;
  EXPECT_EQ(patched.body["data"], json({{"k", "w"}, {"n", "x"}}));

  auto failed_test =
      Call("PATCH", path, json::array({{{"op", "test"}, {"path", "/data/k"}, {"value", "old"}}}),
           "application/json-patch+json");
  EXPECT_EQ(failed_test.status, 422) << failed_test.raw;
  EXPECT_EQ(kube_->Get(path).value()["data"]["k"], "w");

  auto conflict = Call("PATCH", path, json{{"metadata", {{"resourceVersion", "1"}}}},
                       "application/merge-patch+json");
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.body["reason"], "Conflict");

  // Strategic merge: containers merge by name (a merge patch would replace the list).
  Create(kJobs, IndexedJob("smp", "true", 1, 1, 0));
  Create(kPods, Pod("p", "sleep 1"));
  auto smp = Call("PATCH", absl::StrCat(kPods, "/p"),
                  json{{"metadata", {{"labels", {{"x", "y"}}}}},
                       {"spec", {{"containers", {{{"name", "main"}, {"image", "busybox:2"}}}}}}},
                  "application/strategic-merge-patch+json");
  ASSERT_EQ(smp.status, 200) << smp.raw;
  EXPECT_EQ(smp.body["spec"]["containers"][0]["image"], "busybox:2");
  EXPECT_EQ(smp.body["spec"]["containers"][0]["command"][0], "/bin/sh");

  Create(kRuntimes, json{{"metadata", {{"name", "rt"}}}, {"spec", json::object()}});
  auto crd_smp = Call("PATCH", absl::StrCat(kRuntimes, "/rt"), json{{"spec", json::object()}},
                      "application/strategic-merge-patch+json");
  EXPECT_EQ(crd_smp.status, 415);
  EXPECT_EQ(crd_smp.body["reason"], "UnsupportedMediaType");
  EXPECT_EQ(Call("PATCH", path, json::object(), "text/plain").status, 415);
  EXPECT_EQ(Call("PATCH", absl::StrCat(kConfigMaps, "/absent"), json::object(),
                 "application/merge-patch+json")
                .status,
            404);
}

TEST_F(FakeKubeTest, StatusSubresourceIsSeparateAndGenerationFollowsSpec) {
  Start({.serve_kueue = true, .run_pods = false});
  const std::string path = "/apis/kueue.x-k8s.io/v1beta2/namespaces/default/workloads/wl";
  json created = Create("/apis/kueue.x-k8s.io/v1beta2/namespaces/default/workloads",
                        json{{"metadata", {{"name", "wl"}}},
                             {"spec", {{"queueName", "q"}}},
                             {"status", {{"admission", {{"clusterQueue", "sneaky"}}}}}});
  EXPECT_FALSE(created.contains("status")) << "status is not written on create";
  EXPECT_EQ(created["metadata"]["generation"], 1);

  // A status write ignores spec and metadata.
  auto status = Call("PATCH", path + "/status",
                     json{{"spec", {{"queueName", "other"}}},
                          {"metadata", {{"labels", {{"l", "1"}}}}},
                          {"status", {{"admission", {{"clusterQueue", "cq"}}}}}},
                     "application/merge-patch+json");
  ASSERT_EQ(status.status, 200) << status.raw;
  EXPECT_EQ(status.body["status"]["admission"]["clusterQueue"], "cq");
  EXPECT_EQ(status.body["spec"]["queueName"], "q");
  EXPECT_FALSE(status.body["metadata"].contains("labels"));
  EXPECT_EQ(status.body["metadata"]["generation"], 1);

  // A main write ignores status; labels are not spec.
  auto labels =
      Call("PATCH", path,
           json{{"status", {{"admission", nullptr}}}, {"metadata", {{"labels", {{"l", "1"}}}}}},
           "application/merge-patch+json");
  ASSERT_EQ(labels.status, 200) << labels.raw;
  EXPECT_EQ(labels.body["status"]["admission"]["clusterQueue"], "cq");
  EXPECT_EQ(labels.body["metadata"]["labels"]["l"], "1");
  EXPECT_EQ(labels.body["metadata"]["generation"], 1);

  auto spec =
      Call("PATCH", path, json{{"spec", {{"queueName", "q2"}}}}, "application/merge-patch+json");
  ASSERT_EQ(spec.status, 200) << spec.raw;
  EXPECT_EQ(spec.body["metadata"]["generation"], 2);
  EXPECT_EQ(spec.body["status"]["admission"]["clusterQueue"], "cq");
  auto got = Call("GET", path + "/status");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body["kind"], "Workload");

  // Jobs: generation on spec changes, immutable fields refused.
  json job = IndexedJob("gen", "true", 1, 1, 0);
  job["spec"]["suspend"] = true;
  EXPECT_EQ(Create(kJobs, job)["metadata"]["generation"], 1);
  auto parallelism = Call("PATCH", absl::StrCat(kJobs, "/gen"),
                          json{{"spec", {{"parallelism", 3}}}}, "application/merge-patch+json");
  ASSERT_EQ(parallelism.status, 200) << parallelism.raw;
  EXPECT_EQ(parallelism.body["metadata"]["generation"], 2);
  auto immutable = Call("PATCH", absl::StrCat(kJobs, "/gen"), json{{"spec", {{"completions", 4}}}},
                        "application/merge-patch+json");
  EXPECT_EQ(immutable.status, 422) << immutable.raw;
  EXPECT_TRUE(
      absl::StrContains(immutable.raw, "spec.completions: Invalid value: 4: field is immutable"))
      << immutable.raw;
}

// ---- lists ----------------------------------------------------------------------------------

TEST_F(FakeKubeTest, LabelAndFieldSelectors) {
  Start({.run_pods = false});
  Create(kConfigMaps, ConfigMap("a", {{"app", "web"}, {"tier", "front"}}));
  Create(kConfigMaps, ConfigMap("b", {{"app", "web"}, {"tier", "back"}}));
  Create(kConfigMaps, ConfigMap("c", {{"app", "db"}}));
  Create(kConfigMaps, ConfigMap("d"));
  auto names = [&](const std::string& query) {
    auto answer = Call("GET", absl::StrCat(kConfigMaps, "?", query));
    EXPECT_EQ(answer.status, 200) << query << ": " << answer.raw;
    std::vector<std::string> out;
    for (const auto& item : answer.body["items"]) out.push_back(item["metadata"]["name"]);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names("labelSelector=app%3Dweb"), (V{"a", "b"}));
  EXPECT_EQ(names("labelSelector=app%3D%3Dweb"), (V{"a", "b"}));
  EXPECT_EQ(names("labelSelector=app!%3Dweb"), (V{"c", "d"}));
  EXPECT_EQ(names("labelSelector=app%20in%20(web%2Cdb)"), (V{"a", "b", "c"}));
  EXPECT_EQ(names("labelSelector=tier%20notin%20(front)"), (V{"b", "c", "d"}));
  EXPECT_EQ(names("labelSelector=tier"), (V{"a", "b"}));
  EXPECT_EQ(names("labelSelector=!tier"), (V{"c", "d"}));
  EXPECT_EQ(names("labelSelector=app%3Dweb%2Ctier%3Dback"), (V{"b"}));
  EXPECT_EQ(names("fieldSelector=metadata.name%3Dc"), (V{"c"}));
  EXPECT_EQ(names("fieldSelector=metadata.name!%3Dc%2Cmetadata.namespace%3Ddefault"),
            (V{"a", "b", "d"}));
  auto bad = Call("GET", absl::StrCat(kConfigMaps, "?labelSelector=app%20%3D%3D%3D"));
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["reason"], "BadRequest");
  auto unsupported = Call("GET", absl::StrCat(kConfigMaps, "?fieldSelector=spec.foo%3Dbar"));
  EXPECT_EQ(unsupported.status, 400);
  EXPECT_EQ(unsupported.body["message"], "field label not supported: spec.foo");

  // Across namespaces.
  ASSERT_EQ(Call("POST", "/api/v1/namespaces", json{{"metadata", {{"name", "other"}}}}).status,
            201);
  ASSERT_EQ(
      Call("POST", "/api/v1/namespaces/other/configmaps", ConfigMap("a", {{"app", "web"}})).status,
      201);
  auto all = Call("GET", "/api/v1/configmaps?labelSelector=app%3Dweb");
  ASSERT_EQ(all.status, 200);
  ASSERT_EQ(all.body["items"].size(), 3u);
  EXPECT_EQ(all.body["kind"], "ConfigMapList");
  EXPECT_EQ(all.body["items"][2]["metadata"]["namespace"], "other");
}

TEST_F(FakeKubeTest, LimitAndContinueServeOneConsistentSnapshot) {
  Start({.run_pods = false});
  for (int i = 0; i < 25; ++i) Create(kConfigMaps, ConfigMap(absl::StrCat("cm-", 100 + i)));
  auto first = Call("GET", absl::StrCat(kConfigMaps, "?limit=10"));
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(first.body["items"].size(), 10u);
  EXPECT_EQ(first.body["metadata"]["remainingItemCount"], 15);
  std::string token = first.body["metadata"]["continue"];
  std::string list_rv = first.body["metadata"]["resourceVersion"];

  // Changes after the first page do not show in the following pages.
  ASSERT_EQ(Call("DELETE", absl::StrCat(kConfigMaps, "/cm-122")).status, 200);
  Create(kConfigMaps, ConfigMap("cm-999"));
  json changed = kube_->Get(absl::StrCat(kConfigMaps, "/cm-115")).value();
  changed["data"]["k"] = "changed";
  ASSERT_EQ(Call("PUT", absl::StrCat(kConfigMaps, "/cm-115"), changed).status, 200);

  std::vector<std::string> names;
  for (const auto& item : first.body["items"]) names.push_back(item["metadata"]["name"]);
  std::string data_of_115;
  while (!token.empty()) {
    auto page = Call("GET", absl::StrCat(kConfigMaps, "?limit=10&continue=", token));
    ASSERT_EQ(page.status, 200) << page.raw;
    EXPECT_EQ(page.body["metadata"]["resourceVersion"], list_rv);
    for (const auto& item : page.body["items"]) {
      names.push_back(item["metadata"]["name"]);
      if (item["metadata"]["name"] == "cm-115") data_of_115 = item["data"]["k"];
    }
    token = page.body["metadata"].value("continue", "");
  }
  ASSERT_EQ(names.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(names[i], absl::StrCat("cm-", 100 + i));
  EXPECT_EQ(data_of_115, "v");

  // A token from before a compaction has expired.
  auto again = Call("GET", absl::StrCat(kConfigMaps, "?limit=10"));
  Create(kConfigMaps, ConfigMap("cm-1000"));
  kube_->ExpireWatchHistory(false);
  auto expired = Call("GET", absl::StrCat(kConfigMaps, "?limit=10&continue=",
                                          again.body["metadata"]["continue"].get<std::string>()));
  EXPECT_EQ(expired.status, 410);
  EXPECT_EQ(expired.body["reason"], "Expired");
}

// ---- watch ----------------------------------------------------------------------------------

TEST_F(FakeKubeTest, WatchFromAListResourceVersionSeesLaterChangesInOrder) {
  Start({.run_pods = false});
  Create(kConfigMaps, ConfigMap("before"));
  auto list = Call("GET", kConfigMaps);
  const std::string rv = list.body["metadata"]["resourceVersion"];
  auto watch = Watch(absl::StrCat(kConfigMaps, "?watch=1&resourceVersion=", rv));
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ(watch->status(), 200);
  EXPECT_TRUE(watch->chunked());

  Create(kConfigMaps, ConfigMap("w"));
  ASSERT_EQ(Call("PATCH", absl::StrCat(kConfigMaps, "/w"), json{{"data", {{"k", "2"}}}},
                 "application/merge-patch+json")
                .status,
            200);
  ASSERT_EQ(Call("DELETE", absl::StrCat(kConfigMaps, "/w")).status, 200);

  std::vector<std::string> types;
  int64_t last_rv = std::stoll(rv);
  for (int i = 0; i < 3; ++i) {
    auto event = watch->NextEvent(seconds(10));
    ASSERT_TRUE(event.has_value()) << "event " << i;
    types.push_back((*event)["type"]);
    EXPECT_EQ((*event)["object"]["metadata"]["name"], "w");
    EXPECT_GT(Rv((*event)["object"]), last_rv);
    last_rv = Rv((*event)["object"]);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"ADDED", "MODIFIED", "DELETED"}));
  EXPECT_FALSE(watch->NextEvent(milliseconds(200)).has_value()) << "nothing else happened";

  // From "0": the current objects as synthetic ADDED events first.
  auto from_zero = Watch(absl::StrCat(kConfigMaps, "?watch=true&resourceVersion=0"));
  ASSERT_TRUE(from_zero.ok());
  auto added = from_zero->NextEvent(seconds(10));
  ASSERT_TRUE(added.has_value());
  EXPECT_EQ((*added)["type"], "ADDED");
  EXPECT_EQ((*added)["object"]["metadata"]["name"], "before");
}

TEST_F(FakeKubeTest, WatchSelectorsTurnRelabelsIntoAddedAndDeleted) {
  Start({.run_pods = false});
  auto watch = Watch(absl::StrCat(
      kConfigMaps, "?watch=1&labelSelector=app%3Dweb&resourceVersion=",
      kube_->List(kConfigMaps).value()["metadata"]["resourceVersion"].get<std::string>()));
  ASSERT_TRUE(watch.ok());
  Create(kConfigMaps, ConfigMap("x", {{"app", "db"}}));
  ASSERT_EQ(Call("PATCH", absl::StrCat(kConfigMaps, "/x"),
                 json{{"metadata", {{"labels", {{"app", "web"}}}}}}, "application/merge-patch+json")
                .status,
            200);
  ASSERT_EQ(Call("PATCH", absl::StrCat(kConfigMaps, "/x"),
                 json{{"metadata", {{"labels", {{"app", "db"}}}}}}, "application/merge-patch+json")
                .status,
            200);
  auto in = watch->NextEvent(seconds(10));
  auto out = watch->NextEvent(seconds(10));
  ASSERT_TRUE(in && out);
  EXPECT_EQ((*in)["type"], "ADDED");
  EXPECT_EQ((*out)["type"], "DELETED");

  auto by_name = Watch(absl::StrCat(kConfigMaps, "?watch=1&fieldSelector=metadata.name%3Dy"));
  ASSERT_TRUE(by_name.ok());
  Create(kConfigMaps, ConfigMap("z"));
  Create(kConfigMaps, ConfigMap("y"));
  auto y = by_name->NextEvent(seconds(10));
  ASSERT_TRUE(y.has_value());
  EXPECT_EQ((*y)["object"]["metadata"]["name"], "y");
}

TEST_F(FakeKubeTest, WatchBookmarksAndTimeoutSeconds) {
  Start({.run_pods = false, .bookmark_interval_ms = 200});
  auto rv = kube_->List(kJobs).value()["metadata"]["resourceVersion"].get<std::string>();
  auto watch = Watch(absl::StrCat(
      kJobs, "?watch=1&allowWatchBookmarks=true&timeoutSeconds=2&resourceVersion=", rv));
  ASSERT_TRUE(watch.ok());
  auto bookmark = watch->NextEvent(seconds(5));
  ASSERT_TRUE(bookmark.has_value());
  EXPECT_EQ((*bookmark)["type"], "BOOKMARK");
  EXPECT_EQ((*bookmark)["object"]["kind"], "Job");
  EXPECT_EQ((*bookmark)["object"]["apiVersion"], "batch/v1");
  EXPECT_EQ((*bookmark)["object"]["metadata"]["resourceVersion"], rv);
  EXPECT_FALSE((*bookmark)["object"]["metadata"].contains("name"));
  // The stream ends by itself after timeoutSeconds, the last event a bookmark.
  json last;
  while (auto event = watch->NextEvent(seconds(10))) last = *event;
  EXPECT_TRUE(watch->ended());
  EXPECT_EQ(last["type"], "BOOKMARK");

  auto rejected = Call(
      "GET",
      absl::StrCat(kJobs, "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"));
  EXPECT_EQ(rejected.status, 400);
  EXPECT_EQ(rejected.body["reason"], "BadRequest");
}

TEST_F(FakeKubeTest, ExpiredHistoryEndsWatchesWithAnErrorEventInsideTheStream) {
  Start({.run_pods = false});
  const std::string old_rv = kube_->List(kConfigMaps).value()["metadata"]["resourceVersion"];
  Create(kConfigMaps, ConfigMap("a"));
  auto watch = Watch(absl::StrCat(kConfigMaps, "?watch=1&resourceVersion=", old_rv));
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(watch->NextEvent(seconds(10)).has_value());
  kube_->ExpireWatchHistory(/*as_http_410=*/false);
  auto error = watch->NextEvent(seconds(10));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ((*error)["type"], "ERROR");
  EXPECT_EQ((*error)["object"]["kind"], "Status");
  EXPECT_EQ((*error)["object"]["code"], 410);
  EXPECT_EQ((*error)["object"]["reason"], "Expired");
  EXPECT_TRUE(watch->WaitEnded(seconds(10)));

  auto later = Watch(absl::StrCat(kConfigMaps, "?watch=1&resourceVersion=", old_rv));
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->status(), 200);
  auto later_error = later->NextEvent(seconds(10));
  ASSERT_TRUE(later_error.has_value());
  EXPECT_EQ((*later_error)["type"], "ERROR");
  EXPECT_EQ((*later_error)["object"]["code"], 410);
}

TEST_F(FakeKubeTest, ExpiredHistoryAsHttp410ClosesWatchesAndRefusesOldVersions) {
  Start({.run_pods = false});
  const std::string old_rv = kube_->List(kConfigMaps).value()["metadata"]["resourceVersion"];
  auto watch = Watch(absl::StrCat(kConfigMaps, "?watch=1&resourceVersion=", old_rv));
  ASSERT_TRUE(watch.ok());
  Create(kConfigMaps, ConfigMap("a"));
  ASSERT_TRUE(watch->NextEvent(seconds(10)).has_value());
  kube_->ExpireWatchHistory(/*as_http_410=*/true);
  EXPECT_FALSE(watch->NextEvent(seconds(10)).has_value());
  EXPECT_TRUE(watch->ended());

  auto gone = Call("GET", absl::StrCat(kConfigMaps, "?watch=1&resourceVersion=", old_rv));
  EXPECT_EQ(gone.status, 410);
  EXPECT_EQ(gone.body["reason"], "Expired");
  EXPECT_EQ(gone.body["code"], 410);
  // From the current version all is well.
  auto fresh = Watch(absl::StrCat(
      kConfigMaps, "?watch=1&resourceVersion=",
      kube_->List(kConfigMaps).value()["metadata"]["resourceVersion"].get<std::string>()));
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->status(), 200);
}

TEST_F(FakeKubeTest, AWatchOlderThanTheKeptHistoryIsExpired) {
  Start({.run_pods = false, .watch_history = 5});
  const std::string old_rv = kube_->List(kConfigMaps).value()["metadata"]["resourceVersion"];
  for (int i = 0; i < 10; ++i) Create(kConfigMaps, ConfigMap(absl::StrCat("c", i)));
  auto watch = Watch(absl::StrCat(kConfigMaps, "?watch=1&resourceVersion=", old_rv));
  ASSERT_TRUE(watch.ok());
  auto error = watch->NextEvent(seconds(10));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ((*error)["type"], "ERROR");
  EXPECT_EQ((*error)["object"]["code"], 410);
  EXPECT_TRUE(absl::StartsWith((*error)["object"]["message"].get<std::string>(),
                               "too old resource version"));
}

// ---- faults and authentication ---------------------------------------------------------------

TEST_F(FakeKubeTest, FailRequestsAnswersStatusesAndChangesNothing) {
  Start({.run_pods = false});
  kube_->FailRequests(503, 2, "/configmaps");
  for (int i = 0; i < 2; ++i) {
    auto failed = Call("POST", kConfigMaps, ConfigMap("x"));
    EXPECT_EQ(failed.status, 503);
    EXPECT_EQ(failed.body["reason"], "ServiceUnavailable");
  }
  EXPECT_EQ(Call("GET", "/api/v1/namespaces/default/secrets").status, 200) << "other paths pass";
  EXPECT_EQ(kube_->Get(absl::StrCat(kConfigMaps, "/x")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Call("POST", kConfigMaps, ConfigMap("x")).status, 201);

  kube_->FailRequests(429, 1);
  auto throttled = HttpCall(address_, "GET", kConfigMaps);
  ASSERT_TRUE(throttled.ok());
  EXPECT_EQ(throttled->status, 429);
  EXPECT_EQ(throttled->Header("retry-after"), "1");
  EXPECT_EQ(json::parse(throttled->body)["reason"], "TooManyRequests");
  kube_->FailRequests(500, 1, "watch=");
  EXPECT_EQ(Call("GET", kConfigMaps).status, 200);
  auto watch_failed = Call("GET", absl::StrCat(kConfigMaps, "?watch=1"));
  EXPECT_EQ(watch_failed.status, 500);
  EXPECT_EQ(watch_failed.body["reason"], "InternalError");
  EXPECT_EQ(kube_->requests_served(), 7) << "direct access is not counted";
}

TEST_F(FakeKubeTest, BearerTokenIsRequiredWhenConfigured) {
  Start({.run_pods = false, .bearer_token = "s3cret"});
  auto anonymous = KubeCall(address_, "GET", "/api/v1/namespaces");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.body["reason"], "Unauthorized");
  EXPECT_EQ(KubeCall(address_, "GET", "/api/v1/namespaces", nullptr, "", "wrong").status, 401);
  EXPECT_EQ(Call("GET", "/api/v1/namespaces").status, 200);
}

// ---- Job controller and kubelet with real processes -----------------------------------------

TEST_F(FakeKubeTest, IndexedJobRunsEveryIndexToComplete) {
  Start();
  json job = IndexedJob("ok", "echo index=$JOB_COMPLETION_INDEX host=$HOSTNAME", 3, 2, 0);
  job["spec"]["template"]["spec"]["subdomain"] = "svc";
  json created = Create(kJobs, job);
  const std::string uid = created["metadata"]["uid"];
  json done = WaitObject(absl::StrCat(kJobs, "/ok"),
                         [](const json& j) { return HasCondition(j, "Complete"); });
  EXPECT_TRUE(HasCondition(done, "SuccessCriteriaMet"));
  EXPECT_EQ(FindCondition(done, "Complete")->value("reason", ""), "CompletionsReached");
  EXPECT_EQ(Int(done, "/status/succeeded"), 3);
  EXPECT_EQ(Int(done, "/status/failed"), 0);
  EXPECT_FALSE(done["status"].contains("active")) << "omitted when 0, as in batch/v1";
  EXPECT_EQ(done["status"]["ready"], 0) << "a pointer: written even when 0";
  EXPECT_EQ(done["status"]["completedIndexes"], "0-2");
  EXPECT_TRUE(done["status"].contains("completionTime"));
  EXPECT_TRUE(done["status"].contains("startTime"));

  auto pods = PodsOf("ok");
  ASSERT_EQ(pods.size(), 3u);
  std::set<std::string> seen;
  for (const auto& pod : pods) {
    const json& meta = pod["metadata"];
    std::string index = meta["labels"]["batch.kubernetes.io/job-completion-index"];
    std::string name = meta["name"];
    EXPECT_TRUE(absl::StartsWith(name, absl::StrCat("ok-", index, "-"))) << name;
    EXPECT_EQ(name.size(), std::string("ok-0-").size() + 5);
    EXPECT_EQ(meta["annotations"]["batch.kubernetes.io/job-completion-index"], index);
    EXPECT_EQ(meta["labels"]["batch.kubernetes.io/job-name"], "ok");
    EXPECT_EQ(meta["labels"]["batch.kubernetes.io/controller-uid"], uid);
    EXPECT_EQ(meta["ownerReferences"][0]["uid"], uid);
    EXPECT_EQ(meta["ownerReferences"][0]["controller"], true);
    EXPECT_EQ(pod["spec"]["hostname"], absl::StrCat("ok-", index));
    EXPECT_EQ(pod["status"]["phase"], "Succeeded");
    const json& terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"];
    EXPECT_EQ(terminated["exitCode"], 0);
    EXPECT_EQ(terminated["reason"], "Completed");
    EXPECT_EQ(Log(name), absl::StrCat("index=", index, " host=ok-", index, "\n"));
    seen.insert(index);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"0", "1", "2"}));
}

TEST_F(FakeKubeTest, FailingPodsAreReplacedUntilTheBackoffLimit) {
  Start();
  Create(kJobs, IndexedJob("bad", "echo hi; exit 3", 1, 1, 2));
  json failed = WaitObject(absl::StrCat(kJobs, "/bad"),
                           [](const json& j) { return HasCondition(j, "Failed"); });
  const json* condition = FindCondition(failed, "Failed");
  EXPECT_EQ(condition->value("reason", ""), "BackoffLimitExceeded");
  EXPECT_EQ(condition->value("message", ""), "Job has reached the specified backoff limit");
  EXPECT_TRUE(HasCondition(failed, "FailureTarget"));
  EXPECT_EQ(Int(failed, "/status/failed"), 3);
  EXPECT_EQ(Int(failed, "/status/succeeded"), 0);
  EXPECT_FALSE(failed["status"].contains("completionTime"));
  auto pods = PodsOf("bad");
  ASSERT_EQ(pods.size(), 3u) << "the first pod and two replacements";
  for (const auto& pod : pods) {
    EXPECT_EQ(pod["status"]["phase"], "Failed");
    const json& terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"];
    EXPECT_EQ(terminated["exitCode"], 3);
    EXPECT_EQ(terminated["reason"], "Error");
    EXPECT_EQ(Log(pod["metadata"]["name"]), "hi\n");
    EXPECT_FALSE(pod["metadata"].contains("finalizers")) << "counted pods lose the finalizer";
  }
}

TEST_F(FakeKubeTest, BackoffLimitPerIndexFailsOnlyTheIndexThatKeepsFailing) {
  Start();
  // Index 0 always fails, index 1 succeeds; index 0 gets one retry.
  json job = IndexedJob(
      "per-index", "echo failures=$FAILURES; [ \"$JOB_COMPLETION_INDEX\" = 1 ] && exit 0; exit 4",
      2, 2, 0);
  job["spec"].erase("backoffLimit");
  job["spec"]["backoffLimitPerIndex"] = 1;
  job["spec"]["template"]["spec"]["containers"][0]["env"] = {
      {{"name", "FAILURES"},
       {"valueFrom",
        {{"fieldRef",
          {{"fieldPath",
            "metadata.annotations['batch.kubernetes.io/job-index-failure-count']"}}}}}}};
  json created = Create(kJobs, job);
  EXPECT_EQ(created["spec"]["backoffLimit"], 2147483647) << "no global limit by default";
  json failed = WaitObject(absl::StrCat(kJobs, "/per-index"),
                           [](const json& j) { return HasCondition(j, "Failed"); });
  EXPECT_EQ(FindCondition(failed, "Failed")->value("reason", ""), "FailedIndexes");
  EXPECT_EQ(FindCondition(failed, "Failed")->value("message", ""), "Job has failed indexes");
  EXPECT_EQ(failed["status"]["failedIndexes"], "0");
  EXPECT_EQ(failed["status"]["completedIndexes"], "1");
  EXPECT_EQ(Int(failed, "/status/failed"), 2);
  EXPECT_EQ(Int(failed, "/status/succeeded"), 1);
  std::multiset<std::string> logs;
  for (const auto& pod : PodsOf("per-index")) {
    if (pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "0") {
      logs.insert(Log(pod["metadata"]["name"]));
    }
  }
  EXPECT_EQ(logs, (std::multiset<std::string>{"failures=0\n", "failures=1\n"}));

  json bad = IndexedJob("bad-per-index", "true", 2, 2, 0);
  bad["spec"]["completionMode"] = "NonIndexed";
  bad["spec"]["backoffLimitPerIndex"] = 1;
  auto refused = Call("POST", kJobs, bad);
  EXPECT_EQ(refused.status, 422);
  EXPECT_TRUE(absl::StrContains(refused.raw, "requires indexed completion mode")) << refused.raw;
}

TEST_F(FakeKubeTest, OnFailureRestartsTheContainerInPlace) {
  Start();
  // Fails on its first run, succeeds on the second (the working directory is kept).
  Create(kJobs,
         IndexedJob("again", "echo run; if [ -f marker ]; then exit 0; fi; touch marker; exit 1", 1,
                    1, 3, "OnFailure"));
  json done = WaitObject(absl::StrCat(kJobs, "/again"),
                         [](const json& j) { return HasCondition(j, "Complete"); });
  auto pods = PodsOf("again");
  ASSERT_EQ(pods.size(), 1u) << "restarted in place, not replaced";
  const json& cs = pods[0]["status"]["containerStatuses"][0];
  EXPECT_EQ(cs["restartCount"], 1);
  EXPECT_EQ(cs["lastState"]["terminated"]["exitCode"], 1);
  EXPECT_EQ(cs["state"]["terminated"]["exitCode"], 0);
  const std::string name = pods[0]["metadata"]["name"];
  EXPECT_EQ(Log(name), "run\n");
  EXPECT_EQ(Log(name, "?previous=true"), "run\n");
  EXPECT_EQ(Int(done, "/status/failed"), 0);
}

TEST_F(FakeKubeTest, DeletingARunningPodSendsSigtermThenRemovesIt) {
  Start();
  Create(
      kPods,
      Pod("trap",
          "trap 'echo got TERM; exit 7' TERM; echo started; while true; do sleep 0.05; done", 30));
  WaitObject(absl::StrCat(kPods, "/trap"), [](const json& p) { return Phase(p) == "Running"; });
  json running = kube_->Get(absl::StrCat(kPods, "/trap")).value();
  EXPECT_EQ(running["status"]["podIP"], "127.0.0.1");
  EXPECT_EQ(running["spec"]["nodeName"], "fake-node");
  EXPECT_TRUE(running["status"]["containerStatuses"][0]["state"].contains("running"));
  EXPECT_EQ(running["status"]["containerStatuses"][0]["ready"], true);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(Log("trap"), "started"); }));

  auto deleting = Call("DELETE", absl::StrCat(kPods, "/trap"), json{{"gracePeriodSeconds", 20}});
  ASSERT_EQ(deleting.status, 200) << deleting.raw;
  EXPECT_TRUE(deleting.body["metadata"].contains("deletionTimestamp")) << "terminating, not gone";
  EXPECT_EQ(deleting.body["metadata"]["deletionGracePeriodSeconds"], 20);
  std::string log_dir;
  for (const auto& entry : fs::directory_iterator(fs::path(dir_) / "logs")) log_dir = entry.path();
  // Gone well before the grace period: the trap exited on SIGTERM.
  WaitObject(
      absl::StrCat(kPods, "/trap"), [](const json& p) { return p.is_null(); }, seconds(10));
  std::ifstream log(fs::path(log_dir) / "main" / "0.log");
  std::string content((std::istreambuf_iterator<char>(log)), {});
  EXPECT_TRUE(absl::StrContains(content, "got TERM")) << content;

  // A process that ignores SIGTERM is killed once the grace period is over.
  Create(kPods, Pod("stubborn", "trap '' TERM; echo up; while true; do sleep 0.05; done", 30));
  WaitObject(absl::StrCat(kPods, "/stubborn"), [](const json& p) { return Phase(p) == "Running"; });
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(Log("stubborn"), "up"); }));
  ASSERT_EQ(Call("DELETE", absl::StrCat(kPods, "/stubborn?gracePeriodSeconds=1")).status, 200);
  EXPECT_TRUE(kube_->Get(absl::StrCat(kPods, "/stubborn")).ok()) << "still terminating";
  WaitObject(
      absl::StrCat(kPods, "/stubborn"), [](const json& p) { return p.is_null(); }, seconds(15));
}

TEST_F(FakeKubeTest, ACommandThatCannotRunIsAStartError) {
  Start();
  Create(kPods, json{{"metadata", {{"name", "nocmd"}}},
                     {"spec",
                      {{"restartPolicy", "Never"},
                       {"containers",
                        {{{"name", "main"},
                          {"image", "x"},
                          {"command", {"/nonexistent/tool", "--flag"}}}}}}}});
  json pod =
      WaitObject(absl::StrCat(kPods, "/nocmd"), [](const json& p) { return Phase(p) == "Failed"; });
  const json& terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"];
  EXPECT_EQ(terminated["exitCode"], 128);
  EXPECT_EQ(terminated["reason"], "StartError");
  EXPECT_TRUE(absl::StrContains(terminated["message"].get<std::string>(), "/nonexistent/tool"))
      << terminated.dump();

  Create(kPods,
         json{{"metadata", {{"name", "nopath"}}},
              {"spec",
               {{"restartPolicy", "Never"},
                {"containers",
                 {{{"name", "main"}, {"image", "x"}, {"command", {"no-such-command-here"}}}}}}}});
  json nopath = WaitObject(absl::StrCat(kPods, "/nopath"),
                           [](const json& p) { return Phase(p) == "Failed"; });
  EXPECT_TRUE(absl::StrContains(
      nopath["status"]["containerStatuses"][0]["state"]["terminated"]["message"].get<std::string>(),
      "executable file not found in $PATH"));
}

TEST_F(FakeKubeTest, PodLogsOptions) {
  Start();
  Create(kPods, Pod("lines", "for i in 1 2 3 4 5; do echo line$i; done"));
  WaitObject(absl::StrCat(kPods, "/lines"), [](const json& p) { return Phase(p) == "Succeeded"; });
  EXPECT_EQ(Log("lines"), "line1\nline2\nline3\nline4\nline5\n");
  EXPECT_EQ(Log("lines", "?tailLines=2"), "line4\nline5\n");
  EXPECT_EQ(Log("lines", "?limitBytes=8"), "line1\nli");
  EXPECT_EQ(Log("lines", "?container=main&tailLines=0"), "");
  auto wrong = Call("GET", absl::StrCat(kPods, "/lines/log?container=other"));
  EXPECT_EQ(wrong.status, 400);
  EXPECT_EQ(wrong.body["message"], "container other is not valid for pod lines");
  auto no_previous = Call("GET", absl::StrCat(kPods, "/lines/log?previous=true"));
  EXPECT_EQ(no_previous.status, 400);
  EXPECT_EQ(no_previous.body["message"],
            "previous terminated container \"main\" in pod \"lines\" not found");

  // follow=true streams until the process exits.
  Create(kPods, Pod("slow", "echo one; sleep 0.5; echo two; sleep 0.5; echo three"));
  WaitObject(absl::StrCat(kPods, "/slow"), [](const json& p) { return Phase(p) == "Running"; });
  auto follow = StreamReader::Open(address_, absl::StrCat(kPods, "/slow/log?follow=true"));
  ASSERT_TRUE(follow.ok());
  std::vector<std::string> lines;
  while (auto line = follow->NextLine(seconds(10))) lines.push_back(*line);
  EXPECT_TRUE(follow->ended());
  EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "three"}));

  // A container that has not started: the kubelet's words.
  Create(kPods, json{{"metadata", {{"name", "waiting"}}},
                     {"spec",
                      {{"restartPolicy", "Never"},
                       {"containers",
                        {{{"name", "main"},
                          {"image", "x"},
                          {"command", {"true"}},
                          {"env",
                           {{{"name", "V"},
                             {"valueFrom",
                              {{"configMapKeyRef", {{"name", "absent"}, {"key", "k"}}}}}}}}}}}}}});
  json waiting = WaitObject(absl::StrCat(kPods, "/waiting"), [](const json& p) {
    return Str(p, "/status/containerStatuses/0/state/waiting/reason") ==
           "CreateContainerConfigError";
  });
  auto not_started = Call("GET", absl::StrCat(kPods, "/waiting/log"));
  EXPECT_EQ(not_started.status, 400);
  EXPECT_EQ(
      not_started.body["message"],
      "container \"main\" in pod \"waiting\" is waiting to start: CreateContainerConfigError");
  // Once the ConfigMap exists, the kubelet starts it.
  Create(kConfigMaps, json{{"metadata", {{"name", "absent"}}}, {"data", {{"k", "from-cm"}}}});
  WaitObject(absl::StrCat(kPods, "/waiting"),
             [](const json& p) { return Phase(p) == "Succeeded"; });
}

TEST_F(FakeKubeTest, EnvironmentFromFieldRefsSecretsAndExpansion) {
  Start();
  Create("/api/v1/namespaces/default/secrets",
         json{{"metadata", {{"name", "s"}}}, {"stringData", {{"password", "hunter2"}}}});
  json pod = Pod("env", "echo $A $B $MY_NAME $MY_NS $MY_IP $LABEL $PW $HOSTNAME");
  pod["metadata"]["labels"] = {{"team", "ml"}};
  pod["spec"]["containers"][0]["env"] = {
      {{"name", "A"}, {"value", "alpha"}},
      {{"name", "B"}, {"value", "$(A)-beta"}},
      {{"name", "MY_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
      {{"name", "MY_NS"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}},
      {{"name", "MY_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}},
      {{"name", "LABEL"},
       {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.labels['team']"}}}}}},
      {{"name", "PW"}, {"valueFrom", {{"secretKeyRef", {{"name", "s"}, {"key", "password"}}}}}}};
  Create(kPods, pod);
  WaitObject(absl::StrCat(kPods, "/env"), [](const json& p) { return Phase(p) == "Succeeded"; });
  EXPECT_EQ(Log("env"), "alpha alpha-beta env default 127.0.0.1 ml hunter2 env\n");
}

// A secret volume: the container waits in ContainerCreating (a FailedMount event) until its
// Secret exists, reads its keys as files at the mountPath (env naming it is rewritten), and sees
// a patched value (stringData on an update too) without restarting.
TEST_F(FakeKubeTest, SecretVolumesWaitForTheirSecretAndFollowItsChanges) {
  Start();
  json pod = Pod("vol",
                 "cat \"$DIR/token\"; echo; while [ \"$(cat \"$DIR/token\")\" = one ]; "
                 "do sleep 0.05; done; cat \"$DIR/token\"; echo; ls -l \"$DIR/token\"");
  pod["spec"]["volumes"] = {
      {{"name", "creds"}, {"secret", {{"secretName", "late"}, {"defaultMode", 0400}}}}};
  pod["spec"]["containers"][0]["volumeMounts"] = {
      {{"name", "creds"}, {"mountPath", "/var/run/secrets/app"}, {"readOnly", true}}};
  pod["spec"]["containers"][0]["env"] = {{{"name", "DIR"}, {"value", "/var/run/secrets/app"}}};
  Create(kPods, pod);
  WaitObject(absl::StrCat(kPods, "/vol"), [](const json& p) {
    return Str(p, "/status/containerStatuses/0/state/waiting/reason") == "ContainerCreating";
  });
  std::string event;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto list =
            kube_->List("/api/v1/namespaces/default/events?fieldSelector=reason%3DFailedMount");
        if (!list.ok() || (*list)["items"].empty()) return false;
        event = Str((*list)["items"][0], "/message");
        return true;
      },
      seconds(30)));
  EXPECT_EQ(event, "MountVolume.SetUp failed for volume \"creds\" : secret \"late\" not found");
  Create("/api/v1/namespaces/default/secrets",
         json{{"metadata", {{"name", "late"}}}, {"stringData", {{"token", "one"}}}});
  WaitObject(absl::StrCat(kPods, "/vol"), [](const json& p) { return Phase(p) == "Running"; });
  auto patched = Call("PATCH", "/api/v1/namespaces/default/secrets/late",
                      json{{"stringData", {{"token", "two"}}}}, "application/merge-patch+json");
  ASSERT_EQ(patched.status, 200) << patched.raw;
  EXPECT_FALSE(patched.body.contains("stringData")) << patched.raw;
  WaitObject(absl::StrCat(kPods, "/vol"), [](const json& p) { return Phase(p) == "Succeeded"; });
  const std::string log = Log("vol");
  EXPECT_TRUE(absl::StartsWith(log, "one\ntwo\n-r-------- ")) << log;
}

TEST_F(FakeKubeTest, DeletionPropagationThroughOwnerReferences) {
  Start();
  const std::string long_running = "echo up; while true; do sleep 0.05; done";
  // Background: the Job goes at once, its pods (and their processes) follow.
  Create(kJobs, IndexedJob("bg", long_running, 2, 2, 0));
  ASSERT_TRUE(WaitFor([&] {
    auto pods = PodsOf("bg");
    return pods.size() == 2 && Phase(pods[0]) == "Running" && Phase(pods[1]) == "Running";
  }));
  auto background =
      Call("DELETE", absl::StrCat(kJobs, "/bg"), json{{"propagationPolicy", "Background"}});
  ASSERT_EQ(background.status, 200) << background.raw;
  EXPECT_EQ(background.body["kind"], "Status");
  EXPECT_EQ(background.body["status"], "Success");
  EXPECT_EQ(kube_->Get(absl::StrCat(kJobs, "/bg")).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(WaitFor([&] { return PodsOf("bg").empty(); })) << "pods of a deleted Job go";

  // No policy on a batch/v1 Job: its pods are orphaned, with kube-apiserver's warning.
  Create(kJobs, IndexedJob("orphan", long_running, 1, 1, 0));
  ASSERT_TRUE(WaitFor([&] { return PodsOf("orphan").size() == 1; }));
  auto orphaning = Call("DELETE", absl::StrCat(kJobs, "/orphan"));
  ASSERT_EQ(orphaning.status, 200);
  EXPECT_TRUE(absl::StrContains(orphaning.warning, "child pods are preserved by default"))
      << orphaning.warning;
  bool orphaned = WaitFor([&] {
    auto pods = PodsOf("orphan");
    return pods.size() == 1 && !pods[0]["metadata"].contains("ownerReferences") &&
           !pods[0]["metadata"].contains("finalizers");
  });
  ASSERT_TRUE(orphaned) << "the pod outlives its Job, without owner or finalizer";
  const std::string orphan_pod = PodsOf("orphan")[0]["metadata"]["name"];
  auto force = Call("DELETE", absl::StrCat(kPods, "/", orphan_pod, "?gracePeriodSeconds=0"));
  ASSERT_EQ(force.status, 200) << force.raw << " " << orphan_pod;

  // Foreground: the Job stays (deletionTimestamp, foregroundDeletion) until its pods are gone.
  Create(kJobs, IndexedJob("fg", long_running, 1, 1, 0));
  ASSERT_TRUE(WaitFor([&] {
    auto pods = PodsOf("fg");
    return pods.size() == 1 && Phase(pods[0]) == "Running";
  }));
  auto foreground =
      Call("DELETE", absl::StrCat(kJobs, "/fg"), json{{"propagationPolicy", "Foreground"}});
  ASSERT_EQ(foreground.status, 200);
  EXPECT_TRUE(foreground.body["metadata"].contains("deletionTimestamp")) << foreground.raw;
  EXPECT_EQ(foreground.body["metadata"]["finalizers"], json({"foregroundDeletion"}));
  WaitObject(absl::StrCat(kJobs, "/fg"), [](const json& j) { return j.is_null(); });
  EXPECT_TRUE(PodsOf("fg").empty());

  // Deleting a namespace deletes what is in it, then the namespace.
  ASSERT_EQ(Call("POST", "/api/v1/namespaces", json{{"metadata", {{"name", "temp"}}}}).status, 201);
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/temp/configmaps", ConfigMap("c")).status, 201);
  ASSERT_EQ(Call("DELETE", "/api/v1/namespaces/temp").status, 200);
  WaitObject("/api/v1/namespaces/temp", [](const json& n) { return n.is_null(); });
  EXPECT_EQ(kube_->Get("/api/v1/namespaces/temp/configmaps/c").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(FakeKubeTest, SuspendedJobsRunNothingUntilResumed) {
  Start();
  json job = IndexedJob("later", "echo ran", 1, 1, 0);
  job["spec"]["suspend"] = true;
  Create(kJobs, job);
  json suspended = WaitObject(absl::StrCat(kJobs, "/later"),
                              [](const json& j) { return HasCondition(j, "Suspended"); });
  EXPECT_EQ(FindCondition(suspended, "Suspended")->value("reason", ""), "JobSuspended");
  EXPECT_FALSE(suspended["status"].contains("startTime"));
  EXPECT_TRUE(PodsOf("later").empty());
  ASSERT_EQ(Call("PATCH", absl::StrCat(kJobs, "/later"), json{{"spec", {{"suspend", false}}}},
                 "application/merge-patch+json")
                .status,
            200);
  json done = WaitObject(absl::StrCat(kJobs, "/later"),
                         [](const json& j) { return HasCondition(j, "Complete"); });
  const json* resumed = FindCondition(done, "Suspended");
  ASSERT_NE(resumed, nullptr);
  EXPECT_EQ(resumed->value("status", ""), "False");
  EXPECT_EQ(resumed->value("reason", ""), "JobResumed");
}

TEST_F(FakeKubeTest, ActiveDeadlineFailsTheJobAndStopsItsPods) {
  Start();
  json job = IndexedJob("slow", "while true; do sleep 0.05; done", 1, 1, 6);
  job["spec"]["activeDeadlineSeconds"] = 1;
  Create(kJobs, job);
  json failed = WaitObject(absl::StrCat(kJobs, "/slow"),
                           [](const json& j) { return HasCondition(j, "Failed"); });
  EXPECT_EQ(FindCondition(failed, "Failed")->value("reason", ""), "DeadlineExceeded");
  EXPECT_EQ(FindCondition(failed, "Failed")->value("message", ""),
            "Job was active longer than specified deadline");
  EXPECT_EQ(Int(failed, "/status/active"), 0);
  EXPECT_EQ(failed["status"]["terminating"], 0) << "Failed is set once the pods are gone";
  EXPECT_TRUE(PodsOf("slow").empty()) << "the running pod was deleted";
}

TEST_F(FakeKubeTest, SchedulingGatesKeepAPodPendingUntilRemoved) {
  Start();
  json pod = Pod("gated", "echo ran");
  pod["spec"]["schedulingGates"] = {{{"name", "kueue.x-k8s.io/admission"}}};
  Create(kPods, pod);
  json pending = WaitObject(absl::StrCat(kPods, "/gated"), [](const json& p) {
    return Str(p, "/status/conditions/0/reason") == "SchedulingGated";
  });
  EXPECT_EQ(Phase(pending), "Pending");
  EXPECT_FALSE(pending["spec"].contains("nodeName"));
  auto added = Call("PATCH", absl::StrCat(kPods, "/gated"),
                    json{{"spec", {{"schedulingGates", {{{"name", "a"}}, {{"name", "b"}}}}}}},
                    "application/merge-patch+json");
  EXPECT_EQ(added.status, 422) << "gates can only be removed";
  ASSERT_EQ(Call("PATCH", absl::StrCat(kPods, "/gated"),
                 json{{"spec", {{"schedulingGates", nullptr}}}}, "application/merge-patch+json")
                .status,
            200);
  WaitObject(absl::StrCat(kPods, "/gated"), [](const json& p) { return Phase(p) == "Succeeded"; });
  EXPECT_EQ(Log("gated"), "ran\n");
}

TEST_F(FakeKubeTest, DeleteCollectionAndDanglingOwners) {
  Start({.run_pods = false});
  Create(kConfigMaps, ConfigMap("a", {{"app", "x"}}));
  Create(kConfigMaps, ConfigMap("b", {{"app", "x"}}));
  Create(kConfigMaps, ConfigMap("c", {{"app", "y"}}));
  auto deleted = Call("DELETE", absl::StrCat(kConfigMaps, "?labelSelector=app%3Dx"));
  ASSERT_EQ(deleted.status, 200) << deleted.raw;
  EXPECT_EQ(deleted.body["kind"], "ConfigMapList");
  EXPECT_EQ(deleted.body["items"].size(), 2u);
  auto left = kube_->List(kConfigMaps);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ((*left)["items"].size(), 1u);
  EXPECT_EQ((*left)["items"][0]["metadata"]["name"], "c");

  // An object whose owners are all gone already is garbage-collected; one owned by a kind the
  // fake does not serve is left alone.
  json owned = ConfigMap("owned");
  owned["metadata"]["ownerReferences"] = {{{"apiVersion", "batch/v1"},
                                           {"kind", "Job"},
                                           {"name", "gone"},
                                           {"uid", "00000000-0000-4000-8000-000000000000"}}};
  Create(kConfigMaps, owned);
  EXPECT_EQ(kube_->Get(absl::StrCat(kConfigMaps, "/owned")).status().code(),
            absl::StatusCode::kNotFound);
  json foreign = ConfigMap("foreign");
  foreign["metadata"]["ownerReferences"] = {{{"apiVersion", "apps/v1"},
                                             {"kind", "Deployment"},
                                             {"name", "d"},
                                             {"uid", "00000000-0000-4000-8000-000000000001"}}};
  Create(kConfigMaps, foreign);
  EXPECT_TRUE(kube_->Get(absl::StrCat(kConfigMaps, "/foreign")).ok());
}

// ---- run_pods=false: scripted pods ----------------------------------------------------------

TEST_F(FakeKubeTest, WithoutAKubeletPodsWaitForScriptedStatus) {
  Start({.run_pods = false});
  Create(kJobs, IndexedJob("scripted", "exit 1", 1, 1, 0));
  ASSERT_TRUE(WaitFor([&] { return PodsOf("scripted").size() == 1; }));
  json pod = PodsOf("scripted")[0];
  EXPECT_EQ(pod["status"]["phase"], "Pending");
  EXPECT_FALSE(pod["spec"].contains("nodeName"));
  const std::string path = absl::StrCat(kPods, "/", pod["metadata"]["name"].get<std::string>());
  EXPECT_EQ(Log(pod["metadata"]["name"]), "") << "unscheduled: no logs";

  auto running = kube_->MergePatchStatus(
      path,
      json{{"status",
            {{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}});
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ((*running)["status"]["phase"], "Running");
  json job = WaitObject(absl::StrCat(kJobs, "/scripted"), [](const json& j) {
    return Int(j, "/status/ready") == 1 && Int(j, "/status/active") == 1;
  });
  EXPECT_FALSE(HasCondition(job, "Complete"));

  ASSERT_TRUE(kube_->MergePatchStatus(path, json{{"status", {{"phase", "Succeeded"}}}}).ok());
  json done = WaitObject(absl::StrCat(kJobs, "/scripted"),
                         [](const json& j) { return HasCondition(j, "Complete"); });
  EXPECT_EQ(Int(done, "/status/succeeded"), 1);
  EXPECT_EQ(
      kube_->MergePatchStatus(absl::StrCat(kPods, "/absent"), json{{"status", json::object()}})
          .status()
          .code(),
      absl::StatusCode::kNotFound);
}

// ---- Trainer ----------------------------------------------------------------------------------

json TorchRuntime() {
  return {{"apiVersion", "trainer.kubeflow.org/v1alpha1"},
          {"kind", "ClusterTrainingRuntime"},
          {"metadata", {{"name", "torch-distributed"}}},
          {"spec",
           {{"mlPolicy", {{"numNodes", 1}, {"torch", json::object()}}},
            {"template",
             {{"spec",
               {{"replicatedJobs",
                 {{{"name", "node"},
                   {"template",
                    {{"metadata",
                      {{"labels", {{"trainer.kubeflow.org/trainjob-ancestor-step", "trainer"}}}}},
                     {"spec",
                      {{"backoffLimit", 0},
                       {"template",
                        {{"spec",
                          {{"containers",
                            {{{"name", "node"}, {"image", "pytorch/pytorch"}}}}}}}}}}}}}}}}}}}}}};
}

json TrainJob(const std::string& name, const std::string& script, int nodes) {
  return {{"apiVersion", "trainer.kubeflow.org/v1alpha1"},
          {"kind", "TrainJob"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"runtimeRef", {{"name", "torch-distributed"}}},
            {"trainer",
             {{"command", {"/bin/sh", "-c", script}},
              {"numNodes", nodes},
              {"env", {{{"name", "GREETING"}, {"value", "hello"}}}}}}}}};
}

TEST_F(FakeKubeTest, TrainJobRunsItsNodesAndCompletes) {
  Start({.serve_trainer = true});
  auto refused = Call("POST", kTrainJobs, TrainJob("early", "true", 1));
  EXPECT_EQ(refused.status, 403) << refused.raw;
  EXPECT_TRUE(absl::StrContains(
      refused.body.value("message", ""),
      "clustertrainingruntimes.trainer.kubeflow.org \"torch-distributed\" not found"))
      << refused.raw;

  Create(kRuntimes, TorchRuntime());
  Create(kTrainJobs,
         TrainJob("mnist", "echo $GREETING rank=$PET_NODE_RANK of $PET_NNODES; sleep 1", 2));
  const std::string path = absl::StrCat(kTrainJobs, "/mnist");
  json active =
      WaitObject(path, [](const json& t) { return Int(t, "/status/jobsStatus/0/active") == 1; });
  EXPECT_EQ(active["status"]["jobsStatus"][0]["name"], "node");
  EXPECT_EQ(FindCondition(active, "Running"), nullptr);

  json job = kube_->Get(absl::StrCat(kJobs, "/mnist-node-0")).value();
  EXPECT_EQ(job["spec"]["completions"], 2);
  EXPECT_EQ(job["spec"]["parallelism"], 2);
  EXPECT_EQ(job["spec"]["completionMode"], "Indexed");
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["kind"], "TrainJob");
  EXPECT_EQ(job["spec"]["template"]["spec"]["subdomain"], "mnist");

  json done = WaitObject(path, [](const json& t) { return HasCondition(t, "Complete"); });
  EXPECT_EQ(FindCondition(done, "Complete")->value("reason", ""), "AllJobsCompleted");
  EXPECT_EQ(done["status"]["jobsStatus"][0]["succeeded"], 1);
  EXPECT_EQ(done["status"]["jobsStatus"][0]["active"], 0);
  auto pods =
      kube_->List(absl::StrCat(kPods, "?labelSelector=jobset.sigs.k8s.io%2Fjobset-name%3Dmnist"));
  ASSERT_TRUE(pods.ok());
  ASSERT_EQ((*pods)["items"].size(), 2u);
  std::set<std::string> logs;
  for (const auto& pod : (*pods)["items"]) {
    EXPECT_EQ(pod["metadata"]["labels"]["jobset.sigs.k8s.io/replicatedjob-name"], "node");
    logs.insert(Log(pod["metadata"]["name"]));
  }
  EXPECT_EQ(logs, (std::set<std::string>{"hello rank=0 of 2\n", "hello rank=1 of 2\n"}));
  EXPECT_TRUE(kube_->Get("/api/v1/namespaces/default/services/mnist").ok()) << "headless service";

  // Deleting the TrainJob deletes its Jobs and pods.
  ASSERT_EQ(Call("DELETE", path).status, 200);
  ASSERT_TRUE(WaitFor([&] { return !kube_->Get(absl::StrCat(kJobs, "/mnist-node-0")).ok(); }));
  ASSERT_TRUE(WaitFor([&] {
    return (*kube_->List(
        absl::StrCat(kPods, "?labelSelector=jobset.sigs.k8s.io%2Fjobset-name%3Dmnist")))["items"]
        .empty();
  }));
}

TEST_F(FakeKubeTest, TrainJobFailsWhenAJobFailsAndHonoursSuspend) {
  Start({.serve_trainer = true});
  Create(kRuntimes, TorchRuntime());
  Create(kTrainJobs, TrainJob("broken", "exit 2", 1));
  json failed = WaitObject(absl::StrCat(kTrainJobs, "/broken"),
                           [](const json& t) { return HasCondition(t, "Failed"); });
  const json* condition = FindCondition(failed, "Failed");
  EXPECT_EQ(condition->value("reason", ""), "FailedJobs");
  EXPECT_EQ(condition->value("message", ""),
            "jobset failed due to one or more job failures (first failed job: broken-node-0)");
  EXPECT_EQ(failed["status"]["jobsStatus"][0]["failed"], 1);

  json paused = TrainJob("paused", "echo resumed", 1);
  paused["spec"]["suspend"] = true;
  Create(kTrainJobs, paused);
  json suspended = WaitObject(absl::StrCat(kTrainJobs, "/paused"), [](const json& t) {
    return HasCondition(t, "Suspended") && Int(t, "/status/jobsStatus/0/suspended") == 1;
  });
  EXPECT_EQ(FindCondition(suspended, "Suspended")->value("reason", ""), "Suspended");
  EXPECT_EQ(kube_->Get(absl::StrCat(kJobs, "/paused-node-0")).value()["spec"]["suspend"], true);
  EXPECT_TRUE(PodsOf("paused-node-0").empty());
  ASSERT_EQ(Call("PATCH", absl::StrCat(kTrainJobs, "/paused"), json{{"spec", {{"suspend", false}}}},
                 "application/merge-patch+json")
                .status,
            200);
  json done = WaitObject(absl::StrCat(kTrainJobs, "/paused"),
                         [](const json& t) { return HasCondition(t, "Complete"); });
  EXPECT_EQ(FindCondition(done, "Suspended")->value("reason", ""), "Resumed");
  EXPECT_EQ(FindCondition(done, "Suspended")->value("status", ""), "False");
}

TEST_F(FakeKubeTest, KueueWorkloadsAreStoredWithScriptedConditions) {
  Start({.serve_kueue = true, .run_pods = false});
  const std::string workloads = "/apis/kueue.x-k8s.io/v1beta2/namespaces/default/workloads";
  Create(workloads,
         json{{"metadata", {{"name", "wl"}, {"labels", {{"kueue.x-k8s.io/job-name", "j"}}}}},
              {"spec", {{"queueName", "q"}}}});
  auto admitted = kube_->MergePatchStatus(
      absl::StrCat(workloads, "/wl"),
      json{{"status",
            {{"conditions",
              {{{"type", "Admitted"}, {"status", "True"}, {"reason", "Admitted"}}}}}}});
  ASSERT_TRUE(admitted.ok()) << admitted.status();
  EXPECT_EQ(HasCondition(*admitted, "Admitted"), true);
  auto listed =
      kube_->List(absl::StrCat(workloads, "?labelSelector=kueue.x-k8s.io%2Fjob-name%3Dj"));
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ((*listed)["items"].size(), 1u);
}

// ---- StatefulSets, readiness probes, events -------------------------------------------------

// A StatefulSet `name` whose pods (labelled app=<name>) run `container`.
json StatefulSet(const std::string& name, int replicas, const std::string& policy,
                 const json& container, int64_t grace = 5) {
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "StatefulSet"},
      {"metadata", {{"name", name}}},
      {"spec",
       {{"replicas", replicas},
        {"podManagementPolicy", policy},
        {"serviceName", name},
        {"selector", {{"matchLabels", {{"app", name}}}}},
        {"template",
         {{"metadata", {{"labels", {{"app", name}}}}},
          {"spec", {{"terminationGracePeriodSeconds", grace}, {"containers", {container}}}}}}}}};
}

// Serves its pod directory's www/ over HTTP on the pod's IP, port 8080 ("http"), once the file
// `start` exists there (immediately when `start` is empty).
json HttpServerContainer(const json& readiness_probe, const std::string& start = "") {
  std::string script = "mkdir -p www; ";
  if (!start.empty()) {
    script += absl::StrCat("while [ ! -f ", start, " ]; do sleep 0.05; done; ");
  }
  script += "exec python3 -m http.server 8080 --bind \"$POD_IP\" --directory www";
  json c = {
      {"name", "main"},
      {"image", "python"},
      {"command", {"/bin/sh", "-c", script}},
      {"env",
       {{{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}}},
      {"ports", {{{"name", "http"}, {"containerPort", 8080}}}}};
  if (!readiness_probe.is_null()) c["readinessProbe"] = readiness_probe;
  return c;
}

class StatefulSetTest : public FakeKubeTest {
 protected:
  std::string PodPath(const std::string& pod) { return absl::StrCat(kPods, "/", pod); }
  std::string SetPath(const std::string& set) { return absl::StrCat(kStatefulSets, "/", set); }

  // The pods of StatefulSet `set` by name.
  std::map<std::string, json> PodsOfSet(const std::string& set) {
    auto list = kube_->List(absl::StrCat(kPods, "?labelSelector=app%3D", set));
    EXPECT_TRUE(list.ok()) << list.status();
    std::map<std::string, json> out;
    if (list.ok()) {
      for (const auto& item : (*list)["items"]) out[item["metadata"]["name"]] = item;
    }
    return out;
  }

  // The working directory the kubelet gave pod `name` (its command's relative paths land there).
  std::string PodDir(const json& pod) {
    return absl::StrCat(dir_, "/pods/default_", pod["metadata"]["name"].get<std::string>(), "_",
                        pod["metadata"]["uid"].get<std::string>());
  }

  void Touch(const std::string& path) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << "ok\n";
  }

  // The Events about pod `pod` with reason `reason` (a field-selected list).
  std::vector<json> EventsOf(const std::string& pod, const std::string& reason) {
    auto list = kube_->List(
        absl::StrCat(kEvents, "?fieldSelector=involvedObject.name%3D", pod, ",reason%3D", reason));
    EXPECT_TRUE(list.ok()) << list.status();
    std::vector<json> out;
    if (list.ok()) {
      for (const auto& item : (*list)["items"]) out.push_back(item);
    }
    return out;
  }
};

bool Ready(const json& pod) { return HasCondition(pod, "Ready"); }

TEST_F(StatefulSetTest, DefaultsValidationAndImmutability) {
  Start({.run_pods = false});
  json minimal = {{"metadata", {{"name", "web"}}},
                  {"spec",
                   {{"selector", {{"matchLabels", {{"app", "web"}}}}},
                    {"serviceName", "web"},
                    {"template",
                     {{"metadata", {{"labels", {{"app", "web"}}}}},
                      {"spec", {{"containers", {Container("sleep 1000")}}}}}}}}};
  json created = Create(kStatefulSets, minimal);
  EXPECT_EQ(created["apiVersion"], "apps/v1");
  EXPECT_EQ(created["kind"], "StatefulSet");
  EXPECT_EQ(created["metadata"]["generation"], 1);
  const json& spec = created["spec"];
  EXPECT_EQ(spec["replicas"], 1);
  EXPECT_EQ(spec["podManagementPolicy"], "OrderedReady");
  EXPECT_EQ(spec["updateStrategy"],
            json({{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 0}}}}));
  EXPECT_EQ(spec["revisionHistoryLimit"], 10);
  EXPECT_EQ(spec["persistentVolumeClaimRetentionPolicy"],
            json({{"whenDeleted", "Retain"}, {"whenScaled", "Retain"}}));
  EXPECT_EQ(spec["template"]["spec"]["restartPolicy"], "Always");
  EXPECT_EQ(spec["template"]["spec"]["terminationGracePeriodSeconds"], 30);
  EXPECT_EQ(spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
  EXPECT_EQ(created["status"], json({{"replicas", 0}, {"availableReplicas", 0}}));

  // Validation: 422 Invalid with the field causes kube-apiserver gives.
  auto invalid = [&](json object) {
    auto answer = Call("POST", kStatefulSets, object);
    EXPECT_EQ(answer.status, 422) << answer.raw;
    EXPECT_EQ(answer.body["reason"], "Invalid");
    EXPECT_EQ(answer.body["details"]["kind"], "StatefulSet");
    EXPECT_EQ(answer.body["details"]["group"], "apps");
    return answer.body;
  };
  json no_selector = minimal;
  no_selector["metadata"]["name"] = "a";
  no_selector["spec"].erase("selector");
  json e = invalid(no_selector);
  EXPECT_EQ(e["message"],
            "StatefulSet.apps \"a\" is invalid: [spec.selector: Required value, "
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: "
            "`selector` does not match template `labels`]");
  ASSERT_EQ(e["details"]["causes"].size(), 2u);
  EXPECT_EQ(e["details"]["causes"][0], json({{"reason", "FieldValueRequired"},
                                             {"message", "Required value"},
                                             {"field", "spec.selector"}}));

  json mismatch = minimal;
  mismatch["metadata"]["name"] = "b";
  mismatch["spec"]["selector"]["matchLabels"]["app"] = "other";
  EXPECT_EQ(invalid(mismatch)["message"],
            "StatefulSet.apps \"b\" is invalid: spec.template.metadata.labels: Invalid value: "
            "map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`");

  json no_containers = minimal;
  no_containers["metadata"]["name"] = "c";
  no_containers["spec"]["template"]["spec"]["containers"] = json::array();
  EXPECT_EQ(invalid(no_containers)["message"],
            "StatefulSet.apps \"c\" is invalid: spec.template.spec.containers: Required value");

  json never = minimal;
  never["metadata"]["name"] = "d";
  never["spec"]["template"]["spec"]["restartPolicy"] = "Never";
  json never_error = invalid(never);
  EXPECT_EQ(never_error["message"],
            "StatefulSet.apps \"d\" is invalid: spec.template.spec.restartPolicy: Unsupported "
            "value: \"Never\": supported values: \"Always\"");
  EXPECT_EQ(never_error["details"]["causes"][0]["reason"], "FieldValueNotSupported");

  json negative = minimal;
  negative["metadata"]["name"] = "e";
  negative["spec"]["replicas"] = -1;
  EXPECT_EQ(invalid(negative)["message"],
            "StatefulSet.apps \"e\" is invalid: spec.replicas: Invalid value: -1: must be "
            "greater than or equal to 0");

  json policy = minimal;
  policy["metadata"]["name"] = "f";
  policy["spec"]["podManagementPolicy"] = "Random";
  EXPECT_EQ(invalid(policy)["message"],
            "StatefulSet.apps \"f\" is invalid: spec.podManagementPolicy: Unsupported value: "
            "\"Random\": supported values: \"OrderedReady\", \"Parallel\"");

  // Immutability: only replicas, ordinals, template, updateStrategy, the PVC retention policy
  // and minReadySeconds may change; spec changes bump the generation.
  auto forbidden = Call("PATCH", SetPath("web"), json{{"spec", {{"serviceName", "other"}}}},
                        "application/merge-patch+json");
  EXPECT_EQ(forbidden.status, 422) << forbidden.raw;
  EXPECT_EQ(forbidden.body["message"],
            "StatefulSet.apps \"web\" is invalid: spec: Forbidden: updates to statefulset spec "
            "for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
            "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden");
  EXPECT_EQ(forbidden.body["details"]["causes"][0]["reason"], "FieldValueForbidden");
  auto scaled = Call("PATCH", SetPath("web"), json{{"spec", {{"replicas", 3}}}},
                     "application/merge-patch+json");
  ASSERT_EQ(scaled.status, 200) << scaled.raw;
  EXPECT_EQ(scaled.body["metadata"]["generation"], 2);
  auto relabelled =
      Call("PATCH", SetPath("web"), json{{"metadata", {{"labels", {{"tier", "front"}}}}}},
           "application/merge-patch+json");
  ASSERT_EQ(relabelled.status, 200);
  EXPECT_EQ(relabelled.body["metadata"]["generation"], 2) << "metadata is not spec";
  auto negative_update = Call("PATCH", SetPath("web"), json{{"spec", {{"replicas", -2}}}},
                              "application/merge-patch+json");
  EXPECT_EQ(negative_update.status, 422);

  // The scale subresource: an autoscaling/v1 Scale, GET, PATCH and PUT of spec.replicas.
  auto scale = Call("GET", SetPath("web") + "/scale");
  ASSERT_EQ(scale.status, 200) << scale.raw;
  EXPECT_EQ(scale.body["apiVersion"], "autoscaling/v1");
  EXPECT_EQ(scale.body["kind"], "Scale");
  EXPECT_EQ(scale.body["metadata"]["name"], "web");
  EXPECT_EQ(scale.body["spec"]["replicas"], 3);
  EXPECT_EQ(scale.body["status"]["selector"], "app=web");
  auto patched = Call("PATCH", SetPath("web") + "/scale", json{{"spec", {{"replicas", 2}}}},
                      "application/merge-patch+json");
  ASSERT_EQ(patched.status, 200) << patched.raw;
  EXPECT_EQ(patched.body["kind"], "Scale");
  EXPECT_EQ(patched.body["spec"]["replicas"], 2);
  EXPECT_EQ(kube_->Get(SetPath("web")).value()["spec"]["replicas"], 2);
  json stale = scale.body;
  stale["spec"]["replicas"] = 5;
  auto conflict = Call("PUT", SetPath("web") + "/scale", stale);
  EXPECT_EQ(conflict.status, 409) << conflict.raw;
  EXPECT_EQ(conflict.body["message"],
            "Operation cannot be fulfilled on statefulsets.apps \"web\": the object has been "
            "modified; please apply your changes to the latest version and try again");
  // Once the controller has caught up (its status writes change the resourceVersion too).
  WaitObject(SetPath("web"), [](const json& s) {
    return Int(s, "/status/observedGeneration") == Int(s, "/metadata/generation");
  });
  json fresh = Call("GET", SetPath("web") + "/scale").body;
  fresh["spec"]["replicas"] = 0;
  auto to_zero = Call("PUT", SetPath("web") + "/scale", fresh);
  ASSERT_EQ(to_zero.status, 200) << to_zero.raw;
  EXPECT_EQ(kube_->Get(SetPath("web")).value()["spec"]["replicas"], 0);
  fresh = to_zero.body;
  fresh["spec"]["replicas"] = -1;
  auto bad_scale = Call("PUT", SetPath("web") + "/scale", fresh);
  EXPECT_EQ(bad_scale.status, 422) << bad_scale.raw;
  EXPECT_EQ(bad_scale.body["message"],
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be "
            "greater than or equal to 0");
  EXPECT_EQ(Call("GET", absl::StrCat(kStatefulSets, "/nope/scale")).status, 404);
}

TEST_F(StatefulSetTest, ParallelCreatesAndDeletesEveryPodAtOnce) {
  Start();
  // Ignores SIGTERM: a deleted pod stays terminating for its whole grace period (3 s).
  Create(kStatefulSets, StatefulSet("par", 3, "Parallel",
                                    Container("trap '' TERM; while true; do sleep 0.05; done"), 3));
  json set = WaitObject(SetPath("par"), [](const json& s) {
    return Int(s, "/status/readyReplicas") == 3 && Int(s, "/status/availableReplicas") == 3;
  });
  const std::string uid = set["metadata"]["uid"];
  EXPECT_EQ(Int(set, "/status/replicas"), 3);
  EXPECT_EQ(Int(set, "/status/currentReplicas"), 3);
  EXPECT_EQ(Int(set, "/status/updatedReplicas"), 3);
  EXPECT_EQ(Int(set, "/status/observedGeneration"), 1);
  const std::string revision = Str(set, "/status/updateRevision");
  EXPECT_TRUE(absl::StartsWith(revision, "par-")) << revision;
  EXPECT_EQ(Str(set, "/status/currentRevision"), revision);

  auto pods = PodsOfSet("par");
  ASSERT_EQ(pods.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const std::string name = absl::StrCat("par-", i);
    ASSERT_TRUE(pods.count(name)) << name;
    const json& pod = pods[name];
    const json& labels = pod["metadata"]["labels"];
    EXPECT_EQ(labels["app"], "par");
    EXPECT_EQ(labels["statefulset.kubernetes.io/pod-name"], name);
    EXPECT_EQ(labels["apps.kubernetes.io/pod-index"], std::to_string(i));
    EXPECT_EQ(labels["controller-revision-hash"], revision);
    EXPECT_EQ(pod["metadata"]["ownerReferences"], json({{{"apiVersion", "apps/v1"},
                                                         {"kind", "StatefulSet"},
                                                         {"name", "par"},
                                                         {"uid", uid},
                                                         {"controller", true},
                                                         {"blockOwnerDeletion", true}}}));
    EXPECT_EQ(pod["spec"]["hostname"], name);
    EXPECT_EQ(pod["spec"]["subdomain"], "par");
    EXPECT_EQ(pod["spec"]["restartPolicy"], "Always");
    EXPECT_EQ(Phase(pod), "Running");
  }

  // Scaling down to 1: par-1 and par-2 are deleted together, each with its grace period.
  const std::string rv = kube_->List(kPods).value()["metadata"]["resourceVersion"];
  auto watch = Watch(absl::StrCat(kPods, "?watch=1&labelSelector=app%3Dpar&resourceVersion=", rv));
  ASSERT_TRUE(watch.ok());
  ASSERT_EQ(Call("PATCH", SetPath("par"), json{{"spec", {{"replicas", 1}}}},
                 "application/merge-patch+json")
                .status,
            200);
  std::set<std::string> terminating;
  while (terminating.size() < 2) {
    auto event = watch->NextEvent(seconds(10));
    ASSERT_TRUE(event.has_value()) << "terminating so far: " << terminating.size();
    const json& object = (*event)["object"];
    ASSERT_NE((*event)["type"], "DELETED")
        << object["metadata"]["name"] << " went before both were terminating";
    if (object["metadata"].contains("deletionTimestamp")) {
      terminating.insert(object["metadata"]["name"].get<std::string>());
      EXPECT_EQ(object["metadata"]["deletionGracePeriodSeconds"], 3);
    }
  }
  EXPECT_EQ(terminating, (std::set<std::string>{"par-1", "par-2"}));
  ASSERT_TRUE(WaitFor([&] { return PodsOfSet("par").size() == 1; }));
  EXPECT_EQ(PodsOfSet("par").begin()->first, "par-0");
  set = WaitObject(SetPath("par"), [](const json& s) { return Int(s, "/status/replicas") == 1; });
  EXPECT_EQ(Int(set, "/status/readyReplicas"), 1);
  EXPECT_EQ(Int(set, "/status/observedGeneration"), 2);

  // Up again: the missing ordinals come back; then deleting the set takes its pods along.
  ASSERT_EQ(Call("PATCH", SetPath("par"), json{{"spec", {{"replicas", 2}}}},
                 "application/merge-patch+json")
                .status,
            200);
  WaitObject(SetPath("par"), [](const json& s) { return Int(s, "/status/readyReplicas") == 2; });
  EXPECT_EQ(PodsOfSet("par").count("par-1"), 1u);
  auto deleted = Call("DELETE", SetPath("par"),
                      json{{"propagationPolicy", "Foreground"}, {"gracePeriodSeconds", 0}});
  ASSERT_EQ(deleted.status, 200) << deleted.raw;
  WaitObject(SetPath("par"), [](const json& s) { return s.is_null(); });
  EXPECT_TRUE(PodsOfSet("par").empty()) << "foreground deletion waited for the pods";

  // The controller's events, as the real one records them.
  auto created_events = kube_->List(
      absl::StrCat(kEvents, "?fieldSelector=involvedObject.name%3Dpar,reason%3DSuccessfulCreate"));
  ASSERT_TRUE(created_events.ok());
  std::set<std::string> messages;
  for (const auto& e : (*created_events)["items"]) messages.insert(e["message"]);
  EXPECT_TRUE(messages.count("create Pod par-2 in StatefulSet par successful"))
      << created_events->dump();
}

TEST_F(StatefulSetTest, OrderedReadyWaitsForEachPodAndScalesDownHighestFirst) {
  Start({.distinct_pod_ips = true});
  // Each pod serves (and turns ready) only once the test creates its `go` file.
  json probe = {{"tcpSocket", {{"port", "http"}}}, {"periodSeconds", 1}};
  Create(kStatefulSets, StatefulSet("ord", 3, "OrderedReady", HttpServerContainer(probe, "go")));
  json first = WaitObject(PodPath("ord-0"), [](const json& p) { return Phase(p) == "Running"; });
  EXPECT_FALSE(Ready(first));
  // Probes have run and failed a few times: ord-0 is not Ready, so ord-1 does not exist.
  ASSERT_TRUE(WaitFor([&] {
    auto events = EventsOf("ord-0", "Unhealthy");
    return !events.empty() && Int(events[0], "/count") >= 2;
  }));
  EXPECT_EQ(PodsOfSet("ord").size(), 1u);
  EXPECT_EQ(kube_->Get(PodPath("ord-1")).status().code(), absl::StatusCode::kNotFound);

  for (int i = 0; i < 3; ++i) {
    const std::string name = absl::StrCat("ord-", i);
    json pod = WaitObject(PodPath(name), [](const json& p) { return Phase(p) == "Running"; });
    // Its successor waits for it.
    EXPECT_EQ(kube_->Get(PodPath(absl::StrCat("ord-", i + 1))).status().code(),
              absl::StatusCode::kNotFound);
    Touch(PodDir(pod) + "/go");
    WaitObject(PodPath(name), [](const json& p) { return Ready(p); });
  }
  json set = WaitObject(SetPath("ord"),
                        [](const json& s) { return Int(s, "/status/readyReplicas") == 3; });
  EXPECT_EQ(Int(set, "/status/availableReplicas"), 3);

  // Scaling down to 1: ord-2 goes first, and ord-1 only once ord-2 is gone.
  const std::string rv = kube_->List(kPods).value()["metadata"]["resourceVersion"];
  auto watch = Watch(absl::StrCat(kPods, "?watch=1&labelSelector=app%3Dord&resourceVersion=", rv));
  ASSERT_TRUE(watch.ok());
  ASSERT_EQ(Call("PATCH", SetPath("ord"), json{{"spec", {{"replicas", 1}}}},
                 "application/merge-patch+json")
                .status,
            200);
  std::vector<std::string> order;  // "<name> terminating" / "<name> deleted"
  while (order.empty() || order.back() != "ord-1 deleted") {
    auto event = watch->NextEvent(seconds(20));
    ASSERT_TRUE(event.has_value()) << absl::StrJoin(order, ", ");
    const json& meta = (*event)["object"]["metadata"];
    const std::string name = meta["name"];
    std::string what = (*event)["type"] == "DELETED"        ? name + " deleted"
                       : meta.contains("deletionTimestamp") ? name + " terminating"
                                                            : "";
    if (!what.empty() && (order.empty() || order.back() != what)) order.push_back(what);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"ord-2 terminating", "ord-2 deleted",
                                             "ord-1 terminating", "ord-1 deleted"}));
  EXPECT_TRUE(Ready(kube_->Get(PodPath("ord-0")).value()));
}

TEST_F(StatefulSetTest, PodsThatEndOrAreDeletedAreReplaced) {
  Start();
  Create(kStatefulSets,
         StatefulSet("rep", 2, "Parallel",
                     Container(
                         // $$ is Kubernetes' escape for $: the shell sees $$, its pid.
                         "echo $$$$ > pid; trap 'exit 0' TERM; while true; do sleep 0.05; done")));
  WaitObject(SetPath("rep"), [](const json& s) { return Int(s, "/status/readyReplicas") == 2; });
  auto pods = PodsOfSet("rep");
  const std::string uid0 = pods["rep-0"]["metadata"]["uid"];
  const std::string uid1 = pods["rep-1"]["metadata"]["uid"];

  // Deleted by someone else: the same name comes back with a new uid.
  ASSERT_EQ(Call("DELETE", PodPath("rep-1")).status, 200);
  json replaced = WaitObject(PodPath("rep-1"), [&](const json& p) {
    return !p.is_null() && p["metadata"]["uid"] != uid1 && Phase(p) == "Running";
  });
  EXPECT_EQ(replaced["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "1");

  // Ended (as an eviction leaves it): deleted, then created again.
  ASSERT_TRUE(kube_->MergePatchStatus(PodPath("rep-0"), {{"status", {{"phase", "Failed"}}}}).ok());
  WaitObject(PodPath("rep-0"), [&](const json& p) {
    return !p.is_null() && p["metadata"]["uid"] != uid0 && Phase(p) == "Running";
  });

  // A killed container restarts in place: same pod, restartCount 1.
  json pod = kube_->Get(PodPath("rep-1")).value();
  std::string pid_text;
  ASSERT_TRUE(WaitFor([&] {
    std::ifstream in(PodDir(pod) + "/pid");
    return static_cast<bool>(std::getline(in, pid_text)) && !pid_text.empty();
  }));
  int pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(pid_text, &pid));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  json restarted = WaitObject(PodPath("rep-1"), [](const json& p) {
    return Int(p, "/status/containerStatuses/0/restartCount") == 1 && Ready(p);
  });
  EXPECT_EQ(restarted["metadata"]["uid"], pod["metadata"]["uid"]);
  WaitObject(SetPath("rep"), [](const json& s) { return Int(s, "/status/readyReplicas") == 2; });
}

TEST_F(StatefulSetTest, ATemplateChangeReplacesPodsOneAtATimeFromTheTop) {
  Start();
  Create(kStatefulSets,
         StatefulSet("roll", 2, "Parallel",
                     Container("trap 'exit 0' TERM; while true; do sleep 0.05; done")));
  json before = WaitObject(SetPath("roll"),
                           [](const json& s) { return Int(s, "/status/readyReplicas") == 2; });
  const std::string old_revision = Str(before, "/status/updateRevision");
  std::map<std::string, std::string> old_uids;
  for (const auto& [name, pod] : PodsOfSet("roll")) old_uids[name] = pod["metadata"]["uid"];

  const std::string rv = kube_->List(kPods).value()["metadata"]["resourceVersion"];
  auto watch = Watch(absl::StrCat(kPods, "?watch=1&labelSelector=app%3Droll&resourceVersion=", rv));
  ASSERT_TRUE(watch.ok());
  auto patched =
      Call("PATCH", SetPath("roll"),
           json{{"spec", {{"template", {{"metadata", {{"annotations", {{"v", "2"}}}}}}}}}},
           "application/merge-patch+json");
  ASSERT_EQ(patched.status, 200) << patched.raw;
  EXPECT_EQ(patched.body["metadata"]["generation"], 2);

  // roll-1 goes first; roll-0 only once the new roll-1 is Running and Ready.
  std::vector<std::string> order;
  while (order.empty() || order.back() != "roll-0 replaced and ready") {
    auto event = watch->NextEvent(seconds(20));
    ASSERT_TRUE(event.has_value()) << absl::StrJoin(order, ", ");
    const json& pod = (*event)["object"];
    const std::string name = pod["metadata"]["name"];
    std::string what;
    if (pod["metadata"].contains("deletionTimestamp")) {
      what = name + " terminating";
    } else if (pod["metadata"]["uid"] != old_uids[name] && Ready(pod)) {
      what = name + " replaced and ready";
    }
    if (!what.empty() && std::find(order.begin(), order.end(), what) == order.end()) {
      order.push_back(what);
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{"roll-1 terminating", "roll-1 replaced and ready",
                                             "roll-0 terminating", "roll-0 replaced and ready"}));
  json after = WaitObject(SetPath("roll"), [](const json& s) {
    return Int(s, "/status/updatedReplicas") == 2 && Int(s, "/status/currentReplicas") == 2 &&
           Int(s, "/status/readyReplicas") == 2;
  });
  const std::string new_revision = Str(after, "/status/updateRevision");
  EXPECT_NE(new_revision, old_revision);
  EXPECT_EQ(Str(after, "/status/currentRevision"), new_revision);
  EXPECT_EQ(Int(after, "/status/observedGeneration"), 2);
  for (const auto& [name, pod] : PodsOfSet("roll")) {
    EXPECT_EQ(pod["metadata"]["labels"]["controller-revision-hash"], new_revision) << name;
    EXPECT_EQ(pod["metadata"]["annotations"]["v"], "2") << name;
  }
}

TEST_F(StatefulSetTest, HttpGetReadinessAgainstARealServerOnDistinctPodIps) {
  Start({.distinct_pod_ips = true});
  json probe = {{"httpGet", {{"path", "/ready"}, {"port", 8080}}},
                {"periodSeconds", 1},
                {"failureThreshold", 2}};
  Create(kStatefulSets, StatefulSet("srv", 2, "Parallel", HttpServerContainer(probe)));
  auto running = [&] {
    auto pods = PodsOfSet("srv");
    return pods.size() == 2 && Phase(pods["srv-0"]) == "Running" &&
           Phase(pods["srv-1"]) == "Running";
  };
  ASSERT_TRUE(WaitFor(running));
  auto pods = PodsOfSet("srv");
  const std::string ip0 = Str(pods["srv-0"], "/status/podIP");
  const std::string ip1 = Str(pods["srv-1"], "/status/podIP");
  EXPECT_TRUE(absl::StartsWith(ip0, "127.")) << ip0;
  EXPECT_NE(ip0, "127.0.0.1");
  EXPECT_NE(ip0, ip1) << "each pod its own address";
  EXPECT_EQ(pods["srv-0"]["status"]["podIPs"], json({{{"ip", ip0}}}));
  EXPECT_EQ(Str(pods["srv-0"], "/status/hostIP"), "127.0.0.1");

  // Both servers listen on port 8080 of their own address; /ready is a 404 until it exists.
  const std::string failed_404 = "Readiness probe failed: HTTP probe failed with statuscode: 404";
  json event;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& e : EventsOf("srv-0", "Unhealthy")) {
      if (e["message"] == failed_404 && Int(e, "/count") >= 3) event = e;
    }
    return !event.is_null();
  })) << "no repeated 404 event";
  EXPECT_EQ(event["type"], "Warning");
  EXPECT_EQ(event["involvedObject"]["kind"], "Pod");
  EXPECT_EQ(event["involvedObject"]["name"], "srv-0");
  EXPECT_EQ(event["involvedObject"]["namespace"], "default");
  EXPECT_EQ(event["involvedObject"]["apiVersion"], "v1");
  EXPECT_EQ(event["involvedObject"]["uid"], pods["srv-0"]["metadata"]["uid"]);
  EXPECT_EQ(event["involvedObject"]["fieldPath"], "spec.containers{main}");
  EXPECT_EQ(event["source"], json({{"component", "kubelet"}, {"host", "fake-node"}}));
  EXPECT_NE(event["firstTimestamp"], nullptr);
  EXPECT_TRUE(absl::StartsWith(event["metadata"]["name"].get<std::string>(), "srv-0."));
  int same = 0;
  for (const auto& e : EventsOf("srv-0", "Unhealthy")) same += e["message"] == failed_404;
  EXPECT_EQ(same, 1) << "identical events are one object with a count";

  json unready = kube_->Get(PodPath("srv-0")).value();
  EXPECT_EQ(Phase(unready), "Running");
  EXPECT_EQ(unready["status"]["containerStatuses"][0]["ready"], false);
  EXPECT_EQ(unready["status"]["containerStatuses"][0]["started"], true);
  for (const char* type : {"Ready", "ContainersReady"}) {
    const json* c = FindCondition(unready, type);
    ASSERT_NE(c, nullptr) << type;
    EXPECT_EQ((*c)["status"], "False");
    EXPECT_EQ((*c)["reason"], "ContainersNotReady");
    EXPECT_EQ((*c)["message"], "containers with unready status: [main]");
  }
  EXPECT_FALSE(kube_->Get(SetPath("srv")).value()["status"].contains("readyReplicas"));

  // The file appears: ready, and counted by the StatefulSet.
  Touch(PodDir(pods["srv-0"]) + "/www/ready");
  json ready = WaitObject(PodPath("srv-0"), [](const json& p) { return Ready(p); });
  EXPECT_EQ(ready["status"]["containerStatuses"][0]["ready"], true);
  EXPECT_TRUE(HasCondition(ready, "ContainersReady"));
  json set = WaitObject(SetPath("srv"),
                        [](const json& s) { return Int(s, "/status/readyReplicas") == 1; });
  EXPECT_EQ(Int(set, "/status/availableReplicas"), 1);
  EXPECT_FALSE(Ready(kube_->Get(PodPath("srv-1")).value())) << "srv-1 has no /ready yet";
  Touch(PodDir(pods["srv-1"]) + "/www/ready");
  WaitObject(SetPath("srv"), [](const json& s) { return Int(s, "/status/readyReplicas") == 2; });

  // Gone again: failureThreshold (2) failures in a row make it unready.
  fs::remove(PodDir(pods["srv-0"]) + "/www/ready");
  WaitObject(PodPath("srv-0"), [](const json& p) { return !Ready(p); });
  WaitObject(SetPath("srv"), [](const json& s) { return Int(s, "/status/readyReplicas") == 1; });
}

TEST_F(StatefulSetTest, TcpSocketAndRefusedConnectionProbes) {
  Start({.distinct_pod_ips = true});
  json tcp = Pod("tcp", "");
  tcp["spec"]["restartPolicy"] = "Always";
  tcp["spec"]["containers"][0] =
      HttpServerContainer({{"tcpSocket", {{"port", 8080}}}, {"periodSeconds", 1}}, "go");
  Create(kPods, tcp);
  json http = Pod("http", "while true; do sleep 0.05; done");
  http["spec"]["containers"][0]["readinessProbe"] = {
      {"httpGet", {{"path", "/ready"}, {"port", 8080}}}, {"periodSeconds", 1}};
  http["spec"]["containers"][0]["env"] = {
      {{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}};
  Create(kPods, http);
  json tcp_pod =
      WaitObject(absl::StrCat(kPods, "/tcp"), [](const json& p) { return Phase(p) == "Running"; });
  json http_pod =
      WaitObject(absl::StrCat(kPods, "/http"), [](const json& p) { return Phase(p) == "Running"; });
  const std::string tcp_ip = Str(tcp_pod, "/status/podIP");
  const std::string http_ip = Str(http_pod, "/status/podIP");
  ASSERT_NE(tcp_ip, http_ip);

  auto has_event = [&](const std::string& pod, const std::string& message) {
    return WaitFor([&] {
      for (const auto& e : EventsOf(pod, "Unhealthy")) {
        if (e["message"] == message) return true;
      }
      return false;
    });
  };
  EXPECT_TRUE(has_event("tcp", absl::StrCat("Readiness probe failed: dial tcp ", tcp_ip,
                                            ":8080: connect: connection refused")));
  EXPECT_TRUE(has_event("http", absl::StrCat("Readiness probe failed: Get \"http://", http_ip,
                                             ":8080/ready\": dial tcp ", http_ip,
                                             ":8080: connect: connection refused")));
  EXPECT_FALSE(Ready(kube_->Get(absl::StrCat(kPods, "/tcp")).value()));

  // The port opens: the tcpSocket probe succeeds.
  Touch(PodDir(tcp_pod) + "/go");
  WaitObject(absl::StrCat(kPods, "/tcp"), [](const json& p) { return Ready(p); });
  // The downward API gives the pod its own address.
  Create(kPods, [] {
    json p = Pod("ip", "echo $POD_IP");
    p["spec"]["containers"][0]["env"] = {
        {{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}};
    return p;
  }());
  json ip_pod =
      WaitObject(absl::StrCat(kPods, "/ip"), [](const json& p) { return Phase(p) == "Succeeded"; });
  EXPECT_EQ(Log("ip"), Str(ip_pod, "/status/podIP") + "\n");
}

TEST_F(FakeKubeTest, EventFieldSelectorsInListsAndWatches) {
  Start({.run_pods = false});
  auto event = [](const std::string& name, const std::string& pod, const std::string& reason,
                  const std::string& type, const std::string& component) {
    return json{{"metadata", {{"name", name}}},
                {"involvedObject",
                 {{"kind", "Pod"}, {"namespace", "default"}, {"name", pod}, {"uid", pod + "-uid"}}},
                {"reason", reason},
                {"type", type},
                {"message", "m"},
                {"source", {{"component", component}}}};
  };
  Create(kEvents, event("a", "p1", "Unhealthy", "Warning", "kubelet"));
  Create(kEvents, event("b", "p1", "Started", "Normal", "kubelet"));
  Create(kEvents, event("c", "p2", "Unhealthy", "Warning", "kubelet"));
  Create(kEvents, event("d", "p2", "SuccessfulCreate", "Normal", "statefulset-controller"));
  auto names = [&](const std::string& selector) {
    auto list = Call("GET", absl::StrCat(kEvents, "?fieldSelector=", selector));
    EXPECT_EQ(list.status, 200) << list.raw;
    std::vector<std::string> out;
    for (const auto& e : list.body["items"])
      out.push_back(e["metadata"]["name"].get<std::string>());
    return out;
  };
  using Names = std::vector<std::string>;
  EXPECT_EQ(names("involvedObject.name%3Dp1"), (Names{"a", "b"}));
  EXPECT_EQ(names("involvedObject.uid%3Dp2-uid"), (Names{"c", "d"}));
  EXPECT_EQ(
      names("involvedObject.kind%3DPod,involvedObject.namespace%3Ddefault,reason%3DUnhealthy"),
      (Names{"a", "c"}));
  EXPECT_EQ(names("type%3DNormal"), (Names{"b", "d"}));
  EXPECT_EQ(names("source%3Dstatefulset-controller"), (Names{"d"}));
  EXPECT_EQ(names("type!%3DWarning,involvedObject.name%3Dp2"), (Names{"d"}));
  EXPECT_EQ(names("involvedObject.name%3Dp3"), Names{});
  auto unknown = Call("GET", absl::StrCat(kEvents, "?fieldSelector=message%3Dm"));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.body["message"], "field label not supported: message");

  auto watch = Watch(
      absl::StrCat(kEvents, "?watch=1&fieldSelector=involvedObject.name%3Dp2,reason%3DUnhealthy"));
  ASSERT_TRUE(watch.ok());
  auto first = watch->NextEvent(seconds(10));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ((*first)["object"]["metadata"]["name"], "c");
  Create(kEvents, event("e", "p1", "Unhealthy", "Warning", "kubelet"));
  Create(kEvents, event("f", "p2", "Unhealthy", "Warning", "kubelet"));
  auto next = watch->NextEvent(seconds(10));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ((*next)["type"], "ADDED");
  EXPECT_EQ((*next)["object"]["metadata"]["name"], "f") << "e is about another pod";
}

}  // namespace
}  // namespace submarine::testing
