#include "common/compute/trainjob.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/compute/workload.h"

namespace submarine::compute::trainjob {
namespace {

using nlohmann::json;

// The replicatedJob of the trainer step in every runtime we reference, and JobSet's labels.
constexpr char kTrainerStep[] = "node";
constexpr char kReplicatedJobLabel[] = "jobset.sigs.k8s.io/replicatedjob-name";
constexpr char kCompletionIndex[] = "batch.kubernetes.io/job-completion-index";
constexpr int kTrainJobTensorflowPort = 2222;

std::string MetaString(const json& o, const char* map, const std::string& key) {
  auto meta = o.find("metadata");
  if (meta == o.end() || !meta->is_object()) return "";
  auto m = meta->find(map);
  if (m == meta->end() || !m->is_object()) return "";
  auto v = m->find(key);
  return v != m->end() && v->is_string() ? v->get<std::string>() : "";
}

// Maps the node rank r back to the role and index it runs (RankOrder's ranges, "master:1
// worker:3"), writes the rendezvous settings that depend on it, then execs argv.
std::string NodePrelude(Framework framework) {
  std::string s =
      "i=\"${JOB_COMPLETION_INDEX:-0}\"\n"
      "for range in $SUBMARINE_ROLE_RANGES; do\n"
      "  n=\"${range#*:}\"\n"
      "  if [ \"$i\" -lt \"$n\" ]; then SUBMARINE_TASK_ROLE=\"${range%%:*}\"; break; fi\n"
      "  i=$(( i - n ))\n"
      "done\n"
      "export SUBMARINE_TASK_ROLE SUBMARINE_TASK_INDEX=\"$i\" SUBMARINE_TASK_ATTEMPT=1\n"
      "unset SUBMARINE_ROLE_RANGES\n";
  if (framework == Framework::kTensorflow) {
    s += "export TF_CONFIG=\"{\\\"cluster\\\":${SUBMARINE_TF_CLUSTER},\\\"task\\\":"
         "{\\\"type\\\":\\\"${SUBMARINE_TASK_ROLE}\\\",\\\"index\\\":$i}}\"\n";
  }
  s += "exec \"$@\"\n";
  return s;
}

}  // namespace

const std::string& Runtimes::For(Framework framework) const {
  switch (framework) {
    case Framework::kTensorflow:
      return tensorflow;
    case Framework::kPytorch:
      return pytorch;
    case Framework::kXgboost:
      return xgboost;
    case Framework::kPlain:
      break;
  }
  return plain;
}

absl::Status Fits(const WorkloadSpec& spec) {
  if (spec.kind != WorkloadKind::kBatch) {
    return absl::FailedPreconditionError("only batch workloads run as TrainJobs");
  }
  const RoleSpec& first = spec.roles.front();
  for (const RoleSpec& role : spec.roles) {
    if (role.max_restarts > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "role ", role.name, " restarts replicas one by one, which only Indexed Jobs do"));
    }
    if (role.command != first.command || role.image != first.image || role.env != first.env ||
        !(role.resources == first.resources)) {
      return absl::FailedPreconditionError(
          absl::StrCat("roles ", first.name, " and ", role.name,
                       " differ, and a TrainJob's nodes are all alike"));
    }
  }
  return absl::OkStatus();
}

json Manifest(const WorkloadSpec& spec, const std::string& namespace_, const std::string& image,
              const Runtimes& runtimes, const std::map<std::string, std::string>& labels,
              const json& resources, const json& secret_refs) {
  const RoleSpec& node = spec.roles.front();
  const std::vector<TaskRef> ranked = RankOrder(spec);
  std::string ranges;
  for (size_t r = 0; r < ranked.size(); ++r) {
    if (r > 0 && ranked[r].role == ranked[r - 1].role) continue;
    size_t n = 0;
    while (r + n < ranked.size() && ranked[r + n].role == ranked[r].role) ++n;
    absl::StrAppend(&ranges, ranges.empty() ? "" : " ", ranked[r].role, ":", n);
  }
  std::map<std::string, std::string> env = spec.env;
  for (const auto& [k, v] : node.env) env[k] = v;
  env["SUBMARINE_WORKLOAD_ID"] = spec.id;
  env["SUBMARINE_ROLE_RANGES"] = ranges;
  if (spec.framework == Framework::kTensorflow) {
    json cluster = json::object();
    for (size_t r = 0; r < ranked.size(); ++r) {
      cluster[ranked[r].role].push_back(absl::StrCat(spec.id, "-", kTrainerStep, "-0-", r, ".",
                                                     spec.id, ":", kTrainJobTensorflowPort));
    }
    env["SUBMARINE_TF_CLUSTER"] = cluster.dump();
  }
  json env_list = json::array();
  for (const json& ref : secret_refs) {
    if (!env.count(ref["name"].get<std::string>())) env_list.push_back(ref);
  }
  for (const auto& [k, v] : env) env_list.push_back({{"name", k}, {"value", v}});

  json command = {"/bin/sh", "-c", NodePrelude(spec.framework), "submarine-task"};
  if (spec.framework == Framework::kPytorch) {
    // torchrun reads Trainer's PET_* settings and gives argv RANK, WORLD_SIZE and MASTER_*.
    command.push_back("torchrun");
    command.push_back("--no-python");
  }
  for (const std::string& arg : node.command) command.push_back(arg);

  json trainer = {{"image", node.image.empty() ? image : node.image},
                  {"command", command},
                  {"numNodes", static_cast<int>(ranked.size())},
                  {"env", env_list}};
  if (spec.framework == Framework::kPytorch) trainer["numProcPerNode"] = 1;
  if (!resources.empty()) trainer["resourcesPerNode"] = resources;
  json label_json = json::object();
  for (const auto& [k, v] : labels) label_json[k] = v;
  return {{"apiVersion", kGroupVersion},
          {"kind", "TrainJob"},
          {"metadata", {{"name", spec.id}, {"namespace", namespace_}, {"labels", label_json}}},
          {"spec",
           {{"runtimeRef",
             {{"name", runtimes.For(spec.framework)},
              {"apiGroup", "trainer.kubeflow.org"},
              {"kind", "ClusterTrainingRuntime"}}},
            {"trainer", trainer}}}};
}

std::optional<TaskRef> TaskOfPod(const WorkloadSpec& spec, const json& pod) {
  if (MetaString(pod, "labels", kReplicatedJobLabel) != kTrainerStep) return std::nullopt;
  std::string index = MetaString(pod, "annotations", kCompletionIndex);
  if (index.empty()) index = MetaString(pod, "labels", kCompletionIndex);
  int rank = -1;
  const std::vector<TaskRef> ranked = RankOrder(spec);
  if (!absl::SimpleAtoi(index, &rank) || rank < 0 || rank >= static_cast<int>(ranked.size())) {
    return std::nullopt;
  }
  return ranked[static_cast<size_t>(rank)];
}

Observed Observe(const json& trainjob) {
  Observed out;
  const json& status = trainjob.value("status", json::object());
  for (const json& c : status.value("conditions", json::array())) {
    if (c.value("status", "") != "True") continue;
    const std::string type = c.value("type", "");
    const std::string why = absl::StrCat(c.value("reason", ""), ": ", c.value("message", ""));
    if (type == "Complete") out.complete = true;
    if (type == "Failed") {
      out.failed = true;
      out.message = why;
    }
    if (type == "Suspended") {
      out.suspended = true;
      if (out.message.empty()) out.message = why;
    }
  }
  for (const json& j : status.value("jobsStatus", json::array())) {
    out.active += j.value("active", int64_t{0});
  }
  return out;
}

}  // namespace submarine::compute::trainjob
