// The real kubectl as an outside client of the fake API server: discovery (aggregated and
// legacy), create, get, logs, patch, wait and delete, as a user would type them. kubectl runs as
// a subprocess with --kubeconfig from WriteKubeconfig and a private HOME and cache directory,
// never the user's ~/.kube.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/fake_kube/fake_kube_apiserver.h"
#include "tests/support/process.h"

extern char** environ;

namespace submarine::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// kubectl on PATH, or "".
std::string FindKubectl() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "", ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/kubectl");
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

struct KubectlResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class KubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kubectl_ = FindKubectl();
    ASSERT_FALSE(kubectl_.empty())
        << "kubectl is not installed (not on PATH): this test drives the fake API server with "
           "the real kubectl. Run deploy/install-deps.sh, which installs Debian's "
           "kubernetes-client when no kubectl is present.";
    dir_ = MakeTempDir("fake-kube-kubectl");
    fs::create_directories(fs::path(dir_) / "home");
  }

  void TearDown() override {
    kube_.reset();
    if (!HasFailure() && !dir_.empty()) fs::remove_all(dir_);
  }

  void Start(FakeKubeOptions options) {
    options.work_dir = dir_ + "/work";
    // No bearer token: kubectl (client-go) sends credentials over TLS only, never to an http://
    // server (kubernetes/kubectl#744), so a fake that asked for one would refuse it.
    auto started = FakeKubeApiServer::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    kube_ = std::move(*started);
    kubeconfig_ = dir_ + "/kubeconfig";
    ASSERT_TRUE(kube_->WriteKubeconfig(kubeconfig_).ok());
  }

  // Runs kubectl with `args` (after --kubeconfig and --cache-dir), at most `timeout`.
  KubectlResult Kubectl(const std::vector<std::string>& args,
                        std::chrono::seconds timeout = std::chrono::seconds(60)) {
    KubectlResult result;
    std::vector<std::string> argv = {kubectl_, "--kubeconfig", kubeconfig_, "--cache-dir",
                                     dir_ + "/cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string entry = *e;
      if (absl::StartsWith(entry, "HOME=") || absl::StartsWith(entry, "KUBECONFIG=")) continue;
      env.push_back(entry);
    }
    env.push_back("HOME=" + dir_ + "/home");
    env.push_back("KUBECONFIG=" + kubeconfig_);
    const std::string out_path = dir_ + "/kubectl.out", err_path = dir_ + "/kubectl.err";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    std::vector<char*> c_argv, c_env;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    for (auto& e : env) c_env.push_back(e.data());
    c_env.push_back(nullptr);
    pid_t pid;
    int rc = posix_spawn(&pid, kubectl_.c_str(), &actions, nullptr, c_argv.data(), c_env.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      result.err = absl::StrCat("posix_spawn failed: ", rc);
      return result;
    }
    int status = 0;
    bool exited = WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout);
    if (!exited) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      result.err = "kubectl timed out\n";
    } else {
      result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    result.out = ReadFile(out_path);
    result.err += ReadFile(err_path);
    return result;
  }

  // kubectl that must succeed; its stdout.
  std::string Ok(const std::vector<std::string>& args) {
    auto r = Kubectl(args);
    EXPECT_EQ(r.exit_code, 0) << "kubectl " << absl::StrJoin(args, " ") << "\nstdout: " << r.out
                              << "\nstderr: " << r.err;
    return r.out;
  }

  std::string kubectl_;
  std::string dir_;
  std::string kubeconfig_;
  std::unique_ptr<FakeKubeApiServer> kube_;
};

TEST_F(KubectlTest, VersionAndApiResourcesThroughBothDiscoveries) {
  for (bool aggregated : {true, false}) {
    SCOPED_TRACE(aggregated ? "aggregated discovery" : "legacy discovery");
    Start({.serve_trainer = true, .run_pods = false, .aggregated_discovery = aggregated});
    auto version = json::parse(Ok({"version", "-o", "json"}), nullptr, false);
    ASSERT_FALSE(version.is_discarded());
    EXPECT_EQ(version["serverVersion"]["gitVersion"], "v1.32.4");

    std::string resources = Ok({"api-resources", "--no-headers"});
    std::map<std::string, std::string> lines;
    for (absl::string_view line : absl::StrSplit(resources, '\n', absl::SkipEmpty())) {
      std::vector<std::string> cols = absl::StrSplit(line, ' ', absl::SkipEmpty());
      lines[cols[0]] = std::string(line);
    }
    ASSERT_TRUE(lines.count("jobs")) << resources;
    EXPECT_TRUE(absl::StrContains(lines["jobs"], "batch/v1")) << lines["jobs"];
    EXPECT_TRUE(absl::StrContains(lines["pods"], " po ")) << lines["pods"];
    EXPECT_TRUE(absl::StrContains(lines["trainjobs"], "trainer.kubeflow.org/v1alpha1"));
    EXPECT_TRUE(absl::StrContains(lines["clustertrainingruntimes"], "false")) << "cluster-scoped";
    kube_.reset();
  }
}

TEST_F(KubectlTest, CreateGetLogsPatchWaitAndDeleteAJob) {
  Start({});
  const std::string manifest = dir_ + "/job.yaml";
  std::ofstream(manifest) << R"(apiVersion: batch/v1
kind: Job
metadata:
  name: hello
spec:
  completionMode: Indexed
  completions: 2
  parallelism: 2
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["/bin/sh", "-c", "echo hi from $JOB_COMPLETION_INDEX"]
)";
  EXPECT_EQ(Ok({"create", "-f", manifest, "--validate=false"}), "job.batch/hello created\n");
  EXPECT_EQ(Ok({"get", "jobs", "-o", "name"}), "job.batch/hello\n");
  auto list = json::parse(Ok({"get", "jobs", "-o", "json"}), nullptr, false);
  ASSERT_FALSE(list.is_discarded());
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["metadata"]["name"], "hello");
  EXPECT_EQ(list["items"][0]["spec"]["completions"], 2);

  // kubectl wait watches the Job until its condition is met.
  EXPECT_EQ(Ok({"wait", "--for=condition=complete", "job/hello", "--timeout=60s"}),
            "job.batch/hello condition met\n");
  EXPECT_EQ(Ok({"get", "job", "hello", "-o", "jsonpath={.status.completedIndexes}"}), "0,1")
      << "two consecutive indexes are listed, not a range";

  std::string pods = Ok({"get", "pods", "-l", "job-name=hello", "-o", "name"});
  std::vector<std::string> names = absl::StrSplit(pods, '\n', absl::SkipEmpty());
  ASSERT_EQ(names.size(), 2u) << pods;
  std::set<std::string> logs;
  for (const auto& name : names) {
    EXPECT_TRUE(absl::StartsWith(name, "pod/hello-")) << name;
    logs.insert(Ok({"logs", name.substr(4)}));
  }
  EXPECT_EQ(logs, (std::set<std::string>{"hi from 0\n", "hi from 1\n"}));
  EXPECT_NE(Ok({"get", "pods", "-l", "job-name=hello"}).find("hello-0-"), std::string::npos);

  EXPECT_EQ(Ok({"patch", "job", "hello", "--type", "merge", "-p",
                R"({"metadata":{"labels":{"team":"ml"}}})"}),
            "job.batch/hello patched\n");
  EXPECT_EQ(Ok({"get", "job", "hello", "-o", "jsonpath={.metadata.labels.team}"}), "ml");
  EXPECT_EQ(Ok({"patch", "job", "hello", "-p", R"({"metadata":{"labels":{"tier":"gold"}}})"}),
            "job.batch/hello patched\n")
      << "strategic merge patch, kubectl's default";
  auto job = kube_->Get("/apis/batch/v1/namespaces/default/jobs/hello");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["metadata"]["labels"]["team"], "ml");
  EXPECT_EQ((*job)["metadata"]["labels"]["tier"], "gold");

  EXPECT_EQ(Ok({"delete", "job", "hello", "--wait"}), "job.batch \"hello\" deleted\n");
  EXPECT_EQ(kube_->Get("/apis/batch/v1/namespaces/default/jobs/hello").status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(WaitFor([&] {
    auto left = kube_->List("/api/v1/namespaces/default/pods?labelSelector=job-name%3Dhello");
    return left.ok() && (*left)["items"].empty();
  })) << "kubectl deletes in the background: the pods follow";

  auto missing = Kubectl({"get", "job", "hello"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(missing.err, "jobs.batch \"hello\" not found")) << missing.err;
}

TEST_F(KubectlTest, TrainJobsThroughTheirCustomResourceNames) {
  Start({.serve_trainer = true});
  const std::string manifest = dir_ + "/trainjob.yaml";
  std::ofstream(manifest) << R"(apiVersion: trainer.kubeflow.org/v1alpha1
kind: ClusterTrainingRuntime
metadata: {name: submarine-command}
spec:
  mlPolicy: {numNodes: 1}
  template:
    spec:
      replicatedJobs:
      - name: node
        template:
          metadata: {labels: {trainer.kubeflow.org/trainjob-ancestor-step: trainer}}
          spec:
            template:
              spec:
                containers: [{name: node, image: python:3.11-slim}]
---
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: exp-42-cmd}
spec:
  runtimeRef: {name: submarine-command}
  trainer: {command: ["/bin/sh", "-c", "echo trained"], numNodes: 1}
)";
  EXPECT_EQ(Ok({"create", "-f", manifest, "--validate=false"}),
            "clustertrainingruntime.trainer.kubeflow.org/submarine-command created\n"
            "trainjob.trainer.kubeflow.org/exp-42-cmd created\n");
  EXPECT_EQ(Ok({"wait", "--for=condition=Complete", "trainjob/exp-42-cmd", "--timeout=60s"}),
            "trainjob.trainer.kubeflow.org/exp-42-cmd condition met\n");
  std::string pod =
      Ok({"get", "pods", "-l", "jobset.sigs.k8s.io/jobset-name=exp-42-cmd", "-o", "name"});
  ASSERT_TRUE(absl::StartsWith(pod, "pod/exp-42-cmd-node-0-0-")) << pod;
  EXPECT_EQ(Ok({"logs", std::string(absl::StripSuffix(pod.substr(4), "\n"))}), "trained\n");
}

TEST_F(KubectlTest, GetAndScaleAStatefulSetThroughBothDiscoveries) {
  for (bool aggregated : {true, false}) {
    SCOPED_TRACE(aggregated ? "aggregated discovery" : "legacy discovery");
    Start({.aggregated_discovery = aggregated});
    const std::string manifest = dir_ + "/sts.yaml";
    std::ofstream(manifest) << R"(apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 1
  podManagementPolicy: Parallel
  serviceName: web
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"]
)";
    EXPECT_EQ(Ok({"create", "-f", manifest, "--validate=false"}), "statefulset.apps/web created\n");
    std::string listed = Ok({"get", "sts"});
    EXPECT_TRUE(absl::StartsWith(listed, "NAME")) << listed;
    EXPECT_TRUE(absl::StrContains(listed, "\nweb ")) << listed;
    EXPECT_EQ(Ok({"get", "statefulsets", "-o", "name"}), "statefulset.apps/web\n");

    // kubectl scale PATCHes the scale subresource, whose autoscaling/v1 kind it finds through
    // discovery.
    EXPECT_EQ(Ok({"scale", "sts", "web", "--replicas=2"}), "statefulset.apps/web scaled\n");
    EXPECT_EQ(Ok({"get", "sts", "web", "-o", "jsonpath={.spec.replicas}"}), "2");
    ASSERT_TRUE(WaitFor([&] {
      auto set = kube_->Get("/apis/apps/v1/namespaces/default/statefulsets/web");
      return set.ok() && (*set)["status"].value("readyReplicas", 0) == 2;
    })) << "two pods, ready";
    EXPECT_EQ(Ok({"get", "pods", "-l", "app=web", "-o", "name"}), "pod/web-0\npod/web-1\n");
    // With the current replicas as a precondition kubectl GETs the Scale and PUTs it back.
    EXPECT_EQ(Ok({"scale", "statefulset/web", "--current-replicas=2", "--replicas=1"}),
              "statefulset.apps/web scaled\n");
    ASSERT_TRUE(WaitFor([&] {
      auto pods = kube_->List("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb");
      return pods.ok() && (*pods)["items"].size() == 1;
    }));
    auto refused = Kubectl({"scale", "sts", "web", "--current-replicas=5", "--replicas=3"});
    EXPECT_NE(refused.exit_code, 0) << refused.out;
    EXPECT_TRUE(absl::StrContains(refused.err, "Expected replicas to be 5, was 1")) << refused.err;
    kube_.reset();
  }
}

}  // namespace
}  // namespace submarine::testing
