#include "tests/support/fake_kube/job_controller.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/support/fake_kube/names.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

constexpr char kIndexKey[] = "batch.kubernetes.io/job-completion-index";
constexpr char kIndexFailureCountKey[] = "batch.kubernetes.io/job-index-failure-count";

bool HasFinalizer(const json& object, const std::string& finalizer) {
  const json& f = Field(Field(object, "metadata"), "finalizers");
  return f.is_array() && std::find(f.begin(), f.end(), finalizer) != f.end();
}

bool ConditionTrue(const json& status, const std::string& type) {
  const json& conditions = Field(status, "conditions");
  for (size_t i = 0; conditions.is_array() && i < conditions.size(); ++i) {
    if (StringField(conditions[i], "type") == type) {
      return StringField(conditions[i], "status") == "True";
    }
  }
  return false;
}

// Sets condition `type` (a Job condition: lastProbeTime and lastTransitionTime) in `status`.
void SetJobCondition(json& status, const std::string& type, bool value, const std::string& reason,
                     const std::string& message) {
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  const std::string now = NowRfc3339();
  const std::string want = value ? "True" : "False";
  for (auto& c : conditions) {
    if (StringField(c, "type") != type) continue;
    if (StringField(c, "status") != want) c["lastTransitionTime"] = now;
    c["status"] = want;
    c["reason"] = reason;
    c["message"] = message;
    c["lastProbeTime"] = now;
    return;
  }
  conditions.push_back({{"type", type},
                        {"status", want},
                        {"lastProbeTime", now},
                        {"lastTransitionTime", now},
                        {"reason", reason},
                        {"message", message}});
}

// "0-2,4,6,7": the index intervals Kubernetes writes in status.completedIndexes and
// failedIndexes (two consecutive indexes are listed, three or more are a range).
std::string IndexRanges(const std::set<int64_t>& indexes) {
  std::vector<std::string> parts;
  for (auto it = indexes.begin(); it != indexes.end();) {
    int64_t first = *it, last = *it;
    for (++it; it != indexes.end() && *it == last + 1; ++it) last = *it;
    if (first == last) {
      parts.push_back(absl::StrCat(first));
    } else if (last == first + 1) {
      parts.push_back(absl::StrCat(first, ",", last));
    } else {
      parts.push_back(absl::StrCat(first, "-", last));
    }
  }
  return absl::StrJoin(parts, ",");
}

void InjectIndexEnv(json& containers) {
  if (!containers.is_array()) return;
  for (auto& c : containers) {
    json& env = c["env"];
    if (!env.is_array()) env = json::array();
    bool present = std::any_of(env.begin(), env.end(), [](const json& e) {
      return StringField(e, "name") == "JOB_COMPLETION_INDEX";
    });
    if (present) continue;
    env.push_back(
        {{"name", "JOB_COMPLETION_INDEX"},
         {"valueFrom",
          {{"fieldRef",
            {{"apiVersion", "v1"},
             {"fieldPath", "metadata.labels['batch.kubernetes.io/job-completion-index']"}}}}}});
  }
}

}  // namespace

JobController::JobController(ObjectStore& store, bool kubelet_runs_pods)
    : store_(store),
      jobs_(*store.catalog().Find("batch", "v1", "jobs")),
      pods_(*store.catalog().Find("", "v1", "pods")),
      kubelet_runs_pods_(kubelet_runs_pods) {}

JobController::~JobController() { Stop(); }

void JobController::Start() {
  const int jobs_index = store_.catalog().IndexOf(jobs_);
  const int pods_index = store_.catalog().IndexOf(pods_);
  store_.Subscribe([queue = queue_, jobs_index, pods_index](const StoreEvent& e) {
    const json& meta = e.object->json["metadata"];
    const std::string ns = StringField(meta, "namespace");
    if (e.type_index == jobs_index) {
      queue->Add("job:" + ns + "/" + StringField(meta, "name"));
    } else if (e.type_index == pods_index) {
      const json* ref = ControllerRef(e.object->json);
      bool job_owned = ref && StringField(*ref, "kind") == "Job" &&
                       StringField(*ref, "apiVersion") == "batch/v1";
      if (job_owned) queue->Add("job:" + ns + "/" + StringField(*ref, "name"));
      if (HasFinalizer(e.object->json, kTrackingFinalizer) &&
          (!job_owned || !Field(meta, "deletionTimestamp").is_null())) {
        queue->Add("pod:" + ns + "/" + StringField(meta, "name"));
      }
    }
  });
  thread_ = std::thread([this] { Run(); });
}

void JobController::Stop() {
  queue_->ShutDown();
  if (thread_.joinable()) thread_.join();
}

void JobController::Run() {
  std::string key;
  while (queue_->Get(&key)) {
    size_t colon = key.find(':'), slash = key.find('/');
    std::string ns = key.substr(colon + 1, slash - colon - 1), name = key.substr(slash + 1);
    if (key.compare(0, colon, "job") == 0) {
      SyncJob(ns, name);
    } else {
      SyncOrphanPod(ns, name);
    }
  }
}

void JobController::RemoveFinalizer(const json& pod) {
  const json& meta = pod["metadata"];
  (void)store_.Mutate(pods_, StringField(meta, "namespace"), StringField(meta, "name"),
                      /*status_write=*/false, Writer::kController, [](json& p) {
                        json& f = p["metadata"]["finalizers"];
                        if (!f.is_array()) return absl::OkStatus();
                        json kept = json::array();
                        for (const auto& x : f) {
                          if (x != kTrackingFinalizer) kept.push_back(x);
                        }
                        if (kept.empty()) {
                          p["metadata"].erase("finalizers");
                        } else {
                          f = kept;
                        }
                        return absl::OkStatus();
                      });
}

void JobController::SyncOrphanPod(const std::string& namespace_, const std::string& name) {
  auto pod = store_.Get(pods_, namespace_, name);
  if (!pod.ok() || !HasFinalizer((*pod)->json, kTrackingFinalizer)) return;
  const json* ref = ControllerRef((*pod)->json);
  if (ref && store_.Exists(StringField(*ref, "uid"))) return;  // its Job counts it
  RemoveFinalizer((*pod)->json);
}

void JobController::SyncJob(const std::string& namespace_, const std::string& name) {
  const std::string key = "job:" + namespace_ + "/" + name;
  auto job = store_.Get(jobs_, namespace_, name);
  if (!job.ok()) {
    // Gone: forget what was counted for it.
    if (auto known = uid_by_key_.find(key); known != uid_by_key_.end()) {
      tracking_.erase(known->second);
      uid_by_key_.erase(known);
    }
    return;
  }
  const json& object = (*job)->json;
  const json& meta = object["metadata"];
  const std::string uid = StringField(meta, "uid");
  if (auto known = uid_by_key_.find(key); known != uid_by_key_.end() && known->second != uid) {
    tracking_.erase(known->second);  // replaced by a Job of the same name
  }
  uid_by_key_[key] = uid;
  const json& spec = object["spec"];
  json status = Field(object, "status");
  if (!status.is_object()) status = json::object();
  Tracking& t = tracking_[uid];
  const bool indexed = StringField(spec, "completionMode") == "Indexed";
  const int64_t completions = IntField(spec, "completions", -1);
  const int64_t parallelism = IntField(spec, "parallelism", 1);
  const int64_t backoff_limit = IntField(spec, "backoffLimit", 6);
  const json& template_spec = Field(Field(spec, "template"), "spec");
  const bool on_failure = StringField(template_spec, "restartPolicy") == "OnFailure";
  const bool suspend = BoolField(spec, "suspend");
  const bool only_replace_failed = StringField(spec, "podReplacementPolicy") == "Failed";
  // backoffLimitPerIndex (Indexed only): an index fails for good after that many retries.
  const int64_t per_index_limit = indexed ? IntField(spec, "backoffLimitPerIndex", -1) : -1;
  const int64_t max_failed_indexes = IntField(spec, "maxFailedIndexes", -1);
  const bool finished = ConditionTrue(status, "Complete") || ConditionTrue(status, "Failed");
  bool ending =
      ConditionTrue(status, "FailureTarget") || ConditionTrue(status, "SuccessCriteriaMet");

  std::vector<ObjectPtr> active_pods;
  std::map<int64_t, int> active_by_index;
  int64_t ready = 0, terminating = 0, restarts = 0;
  for (const auto& pod : store_.Dependents(uid)) {
    const json& p = pod->json;
    if (StringField(p, "kind") != "Pod") continue;
    const json* ref = ControllerRef(p);
    if (!ref || StringField(*ref, "uid") != uid) continue;
    const json& pmeta = p["metadata"];
    const std::string puid = StringField(pmeta, "uid");
    const json& pstatus = Field(p, "status");
    const std::string phase = StringField(pstatus, "phase");
    const bool terminal = phase == "Succeeded" || phase == "Failed";
    const bool deleting = !Field(pmeta, "deletionTimestamp").is_null();
    const bool bound = !StringField(Field(p, "spec"), "nodeName").empty();
    int64_t index = -1;
    if (indexed && !absl::SimpleAtoi(StringField(Field(pmeta, "annotations"), kIndexKey), &index)) {
      index = -1;
    }
    // isPodFailed: a Failed pod; under TerminatingOrFailed also a deleted pod that has not
    // succeeded (it never gets a chance to), under Failed a deleted pod no kubelet will finish
    // (what PodGC does to unscheduled terminating pods).
    const bool failed =
        phase == "Failed" || (deleting && phase != "Succeeded" &&
                              (!only_replace_failed || !(kubelet_runs_pods_ && bound)));
    if (!t.counted.count(puid) && (phase == "Succeeded" || failed)) {
      t.counted.insert(puid);
      if (phase == "Succeeded") {
        if (!indexed) {
          ++t.succeeded;
        } else if (index >= 0 && index < completions) {
          t.succeeded_indexes.insert(index);
        }
      } else {
        ++t.failed;
        if (index >= 0) ++t.failures_by_index[index];
      }
    }
    if (HasFinalizer(p, kTrackingFinalizer) && t.counted.count(puid)) RemoveFinalizer(p);
    if (on_failure && (phase == "Running" || phase == "Pending")) {
      const json& cs = Field(pstatus, "containerStatuses");
      for (size_t i = 0; cs.is_array() && i < cs.size(); ++i) {
        restarts += IntField(cs[i], "restartCount", 0);
      }
    }
    if (terminal) continue;
    if (deleting) {
      ++terminating;
      continue;
    }
    active_pods.push_back(pod);
    if (index >= 0) ++active_by_index[index];
    const json& conditions = Field(pstatus, "conditions");
    for (size_t i = 0; conditions.is_array() && i < conditions.size(); ++i) {
      if (StringField(conditions[i], "type") == "Ready" &&
          StringField(conditions[i], "status") == "True") {
        ++ready;
      }
    }
  }
  const int64_t succeeded =
      indexed ? static_cast<int64_t>(t.succeeded_indexes.size()) : t.succeeded;
  std::set<int64_t> failed_indexes;
  if (per_index_limit >= 0) {
    for (const auto& [index, count] : t.failures_by_index) {
      if (count > per_index_limit && index < completions) failed_indexes.insert(index);
    }
  }
  // pastBackoffLimitOnFailure: container restarts of running pods, checked on their own.
  const bool restarts_exceeded =
      on_failure && (backoff_limit == 0 ? restarts > 0 : restarts >= backoff_limit);
  auto delete_active = [&] {
    for (const auto& pod : active_pods) {
      (void)store_.Delete(pods_, namespace_, StringField(pod->json["metadata"], "name"),
                          DeleteOptions{.propagation_policy = "Background"});
    }
    terminating += static_cast<int64_t>(active_pods.size());
    active_pods.clear();
    ready = 0;
  };

  if (finished) {
    delete_active();
  } else {
    if (!ending) {
      std::optional<TimePoint> start;
      if (status.contains("startTime")) start = ParseRfc3339(StringField(status, "startTime"));
      const int64_t deadline = IntField(spec, "activeDeadlineSeconds", 0);
      const bool complete =
          (completions >= 0 ? succeeded >= completions : succeeded > 0) && active_pods.empty();
      if (t.failed > backoff_limit || restarts_exceeded) {
        SetJobCondition(status, "FailureTarget", true, "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit");
      } else if (deadline > 0 && start && !suspend &&
                 std::chrono::system_clock::now() >= *start + std::chrono::seconds(deadline)) {
        SetJobCondition(status, "FailureTarget", true, "DeadlineExceeded",
                        "Job was active longer than specified deadline");
      } else if (max_failed_indexes >= 0 &&
                 static_cast<int64_t>(failed_indexes.size()) > max_failed_indexes) {
        SetJobCondition(status, "FailureTarget", true, "MaxFailedIndexesExceeded",
                        "Job has exceeded the specified maximal number of failed indexes");
      } else if (!failed_indexes.empty() &&
                 static_cast<int64_t>(failed_indexes.size()) + succeeded >= completions) {
        SetJobCondition(status, "FailureTarget", true, "FailedIndexes", "Job has failed indexes");
      } else if (complete) {
        SetJobCondition(status, "SuccessCriteriaMet", true, "CompletionsReached",
                        "Reached expected number of succeeded pods");
      }
      ending =
          ConditionTrue(status, "FailureTarget") || ConditionTrue(status, "SuccessCriteriaMet");
      if (!ending && deadline > 0 && start && !suspend) {
        auto left = *start + std::chrono::seconds(deadline) - std::chrono::system_clock::now();
        queue_->AddAfter(key, absl::FromChrono(left) + absl::Milliseconds(50));
      }
    }
    if (ending) {
      delete_active();
      if (terminating == 0) {
        if (ConditionTrue(status, "FailureTarget")) {
          std::string reason, message;
          for (const auto& c : status["conditions"]) {
            if (StringField(c, "type") == "FailureTarget") {
              reason = StringField(c, "reason");
              message = StringField(c, "message");
            }
          }
          SetJobCondition(status, "Failed", true, reason, message);
        } else {
          SetJobCondition(status, "Complete", true, "CompletionsReached",
                          "Reached expected number of succeeded pods");
          status["completionTime"] = NowRfc3339();
        }
      }
    } else if (suspend) {
      delete_active();
      if (!ConditionTrue(status, "Suspended")) {
        SetJobCondition(status, "Suspended", true, "JobSuspended", "Job suspended");
      }
    } else {
      if (ConditionTrue(status, "Suspended")) {
        SetJobCondition(status, "Suspended", false, "JobResumed", "Job resumed");
        status["startTime"] = NowRfc3339();
      }
      if (!status.contains("startTime")) status["startTime"] = NowRfc3339();
      std::vector<int64_t> to_create;
      int64_t room = parallelism - static_cast<int64_t>(active_pods.size());
      if (indexed) {
        for (int64_t i = 0; i < completions && room > 0; ++i) {
          if (t.succeeded_indexes.count(i) || failed_indexes.count(i) || active_by_index[i] > 0) {
            continue;
          }
          to_create.push_back(i);
          --room;
        }
      } else {
        int64_t want = completions >= 0 ? std::min(parallelism, completions - succeeded)
                                        : (succeeded > 0 ? 0 : parallelism);
        for (int64_t i = static_cast<int64_t>(active_pods.size()); i < want; ++i) {
          to_create.push_back(-1);
        }
      }
      const json& tmpl = Field(spec, "template");
      for (int64_t index : to_create) {
        json pmeta = json::object();
        json labels = Field(Field(tmpl, "metadata"), "labels");
        json annotations = Field(Field(tmpl, "metadata"), "annotations");
        if (!labels.is_object()) labels = json::object();
        if (!annotations.is_object()) annotations = json::object();
        json pspec = Field(tmpl, "spec");
        if (index >= 0) {
          labels[kIndexKey] = std::to_string(index);
          annotations[kIndexKey] = std::to_string(index);
          if (per_index_limit >= 0) {
            annotations[kIndexFailureCountKey] = std::to_string(t.failures_by_index[index]);
          }
          InjectIndexEnv(pspec["containers"]);
          if (pspec.contains("initContainers")) InjectIndexEnv(pspec["initContainers"]);
          if (!StringField(pspec, "subdomain").empty()) {
            pspec["hostname"] = absl::StrCat(name, "-", index);
          }
          pmeta["generateName"] = absl::StrCat(name, "-", index, "-");
        } else {
          pmeta["generateName"] = name + "-";
        }
        pmeta["labels"] = labels;
        if (!annotations.empty()) pmeta["annotations"] = annotations;
        pmeta["ownerReferences"] = {{{"apiVersion", "batch/v1"},
                                     {"kind", "Job"},
                                     {"name", name},
                                     {"uid", uid},
                                     {"controller", true},
                                     {"blockOwnerDeletion", true}}};
        pmeta["finalizers"] = {kTrackingFinalizer};
        json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", pmeta}, {"spec", pspec}};
        auto created = store_.Create(pods_, namespace_, std::move(pod));
        if (!created.ok()) {
          queue_->AddAfter(key, absl::Seconds(1));
          break;
        }
        active_pods.push_back(*created);
      }
    }
  }

  // active, succeeded and failed are omitempty integers in batch/v1 (absent when 0); ready and
  // terminating are pointers, always written.
  auto set_or_omit = [&](const char* field, int64_t value) {
    if (value > 0) {
      status[field] = value;
    } else {
      status.erase(field);
    }
  };
  set_or_omit("active", static_cast<int64_t>(active_pods.size()));
  set_or_omit("succeeded", succeeded);
  set_or_omit("failed", t.failed);
  status["ready"] = ready;
  status["terminating"] = terminating;
  status["uncountedTerminatedPods"] = json::object();
  if (indexed && !t.succeeded_indexes.empty()) {
    status["completedIndexes"] = IndexRanges(t.succeeded_indexes);
  }
  if (per_index_limit >= 0) status["failedIndexes"] = IndexRanges(failed_indexes);
  (void)store_.Mutate(jobs_, namespace_, name, /*status_write=*/true, Writer::kController,
                      [&](json& j) {
                        if (StringField(j["metadata"], "uid") != uid) {
                          return absl::AbortedError("job replaced");
                        }
                        j["status"] = status;
                        return absl::OkStatus();
                      });
}

}  // namespace submarine::testing::fake_kube
