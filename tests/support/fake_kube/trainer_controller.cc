#include "tests/support/fake_kube/trainer_controller.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tests/support/fake_kube/names.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

constexpr char kGroup[] = "trainer.kubeflow.org";
constexpr char kManager[] = "trainer.kubeflow.org/trainjob-controller";
constexpr char kAncestorLabel[] = "trainer.kubeflow.org/trainjob-ancestor-step";
constexpr char kJobSetName[] = "jobset.sigs.k8s.io/jobset-name";
constexpr char kJobSetUid[] = "jobset.sigs.k8s.io/jobset-uid";
constexpr char kReplicatedJobName[] = "jobset.sigs.k8s.io/replicatedjob-name";
constexpr char kReplicatedJobReplicas[] = "jobset.sigs.k8s.io/replicatedjob-replicas";
constexpr char kJobIndex[] = "jobset.sigs.k8s.io/job-index";
constexpr int kTrainerPort = 29500;

const json* FindCondition(const json& status, const std::string& type) {
  const json& conditions = Field(status, "conditions");
  for (size_t i = 0; conditions.is_array() && i < conditions.size(); ++i) {
    if (StringField(conditions[i], "type") == type) return &conditions[i];
  }
  return nullptr;
}

bool ConditionTrue(const json& status, const std::string& type) {
  const json* c = FindCondition(status, type);
  return c && StringField(*c, "status") == "True";
}

// meta.SetStatusCondition: lastTransitionTime changes only with the status.
void SetCondition(json& status, const std::string& type, bool value, const std::string& reason,
                  const std::string& message) {
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  const std::string want = value ? "True" : "False";
  for (auto& c : conditions) {
    if (StringField(c, "type") != type) continue;
    if (StringField(c, "status") != want) c["lastTransitionTime"] = NowRfc3339();
    c["status"] = want;
    c["reason"] = reason;
    c["message"] = message;
    return;
  }
  conditions.push_back({{"type", type},
                        {"status", want},
                        {"lastTransitionTime", NowRfc3339()},
                        {"reason", reason},
                        {"message", message}});
}

void UpsertEnv(json& container, const json& vars) {
  json& env = container["env"];
  if (!env.is_array()) env = json::array();
  for (const auto& v : vars) {
    auto it = std::find_if(env.begin(), env.end(), [&](const json& e) {
      return StringField(e, "name") == StringField(v, "name");
    });
    if (it == env.end()) {
      env.push_back(v);
    } else {
      *it = v;
    }
  }
}

void AddLabels(json& meta, const json& labels) {
  json& l = meta["labels"];
  if (!l.is_object()) l = json::object();
  for (auto it = labels.begin(); it != labels.end(); ++it) l[it.key()] = *it;
}

bool JobConditionTrue(const json& job, const std::string& type) {
  const json& conditions = Field(Field(job, "status"), "conditions");
  for (size_t i = 0; conditions.is_array() && i < conditions.size(); ++i) {
    if (StringField(conditions[i], "type") == type &&
        StringField(conditions[i], "status") == "True") {
      return true;
    }
  }
  return false;
}

// JobSet's notion of a ready child Job: ready plus succeeded pods cover the expected pods.
bool JobReady(const json& job) {
  const json& spec = Field(job, "spec");
  int64_t expected = IntField(spec, "parallelism", 1);
  int64_t completions = IntField(spec, "completions", -1);
  if (completions >= 0) expected = std::min(expected, completions);
  const json& status = Field(job, "status");
  return IntField(status, "ready", 0) + IntField(status, "succeeded", 0) >= expected;
}

}  // namespace

TrainerController::TrainerController(ObjectStore& store)
    : store_(store),
      trainjobs_(*store.catalog().Find(kGroup, "v1alpha1", "trainjobs")),
      jobs_(*store.catalog().Find("batch", "v1", "jobs")),
      services_(*store.catalog().Find("", "v1", "services")),
      events_(*store.catalog().Find("", "v1", "events")) {}

TrainerController::~TrainerController() { Stop(); }

void TrainerController::Start() {
  const int trainjobs_index = store_.catalog().IndexOf(trainjobs_);
  const int jobs_index = store_.catalog().IndexOf(jobs_);
  store_.Subscribe([queue = queue_, trainjobs_index, jobs_index](const StoreEvent& e) {
    const json& meta = e.object->json["metadata"];
    const std::string ns = StringField(meta, "namespace");
    if (e.type_index == trainjobs_index) {
      queue->Add(ns + "/" + StringField(meta, "name"));
    } else if (e.type_index == jobs_index) {
      const json& refs = Field(meta, "ownerReferences");
      for (size_t i = 0; refs.is_array() && i < refs.size(); ++i) {
        if (StringField(refs[i], "kind") == "TrainJob" && BoolField(refs[i], "controller")) {
          queue->Add(ns + "/" + StringField(refs[i], "name"));
        }
      }
    }
  });
  thread_ = std::thread([this] { Run(); });
}

void TrainerController::Stop() {
  queue_->ShutDown();
  if (thread_.joinable()) thread_.join();
}

void TrainerController::Run() {
  std::string key;
  while (queue_->Get(&key)) {
    size_t slash = key.find('/');
    Sync(key.substr(0, slash), key.substr(slash + 1));
  }
}

void TrainerController::RecordEvent(const json& trainjob, const std::string& type,
                                    const std::string& reason, const std::string& message) {
  const json& meta = trainjob["metadata"];
  const std::string now = NowRfc3339();
  json event = {{"metadata", {{"generateName", StringField(meta, "name") + "."}}},
                {"involvedObject",
                 {{"apiVersion", absl::StrCat(kGroup, "/v1alpha1")},
                  {"kind", "TrainJob"},
                  {"name", StringField(meta, "name")},
                  {"namespace", StringField(meta, "namespace")},
                  {"uid", StringField(meta, "uid")},
                  {"resourceVersion", StringField(meta, "resourceVersion")}}},
                {"reason", reason},
                {"message", message},
                {"type", type},
                {"source", {{"component", "trainjob-controller"}}},
                {"reportingComponent", "trainjob-controller"},
                {"firstTimestamp", now},
                {"lastTimestamp", now},
                {"count", 1}};
  (void)store_.Create(events_, StringField(meta, "namespace"), std::move(event));
}

void TrainerController::Sync(const std::string& namespace_, const std::string& name) {
  auto found = store_.Get(trainjobs_, namespace_, name);
  if (!found.ok()) return;
  const json& tj = (*found)->json;
  const json& meta = tj["metadata"];
  const std::string uid = StringField(meta, "uid");
  const json& spec = Field(tj, "spec");
  std::string managed_by = StringField(spec, "managedBy");
  if (!managed_by.empty() && managed_by != kManager) return;
  json status = Field(tj, "status");
  if (!status.is_object()) status = json::object();
  const bool finished = ConditionTrue(status, "Complete") || ConditionTrue(status, "Failed");
  const bool suspend = BoolField(spec, "suspend");
  const std::string key = namespace_ + "/" + name;

  const json& ref = Field(spec, "runtimeRef");
  const bool cluster = StringField(ref, "kind") != "TrainingRuntime";
  const ResourceType* runtime_type = store_.catalog().Find(
      kGroup, "v1alpha1", cluster ? "clustertrainingruntimes" : "trainingruntimes");
  absl::StatusOr<ObjectPtr> runtime =
      runtime_type ? store_.Get(*runtime_type, cluster ? "" : namespace_, StringField(ref, "name"))
                   : absl::NotFoundError("no runtime kind");
  json replicated_jobs = json::array();
  json ml_policy;
  if (runtime.ok()) {
    replicated_jobs =
        Field(Field(Field(Field((*runtime)->json, "spec"), "template"), "spec"), "replicatedJobs");
    if (!replicated_jobs.is_array()) replicated_jobs = json::array();
    ml_policy = Field(Field((*runtime)->json, "spec"), "mlPolicy");
  } else if (!finished && warned_.insert(uid).second) {
    RecordEvent(tj, "Warning", "TrainJobResourcesCreationFailed",
                absl::StrCat("TrainJob resources reconciliation failed: ",
                             cluster ? "clustertrainingruntimes" : "trainingruntimes",
                             ".trainer.kubeflow.org \"", StringField(ref, "name"), "\" not found"));
  }

  auto owned_jobs = [&] {
    std::vector<ObjectPtr> out;
    for (const auto& o : store_.Dependents(uid)) {
      if (StringField(o->json, "kind") == "Job") out.push_back(o);
    }
    return out;
  };
  std::vector<ObjectPtr> jobs = owned_jobs();
  auto jobs_of = [&](const std::string& rj_name) {
    std::vector<const json*> out;
    for (const auto& j : jobs) {
      if (StringField(Field(j->json["metadata"], "labels"), kReplicatedJobName) == rj_name) {
        out.push_back(&j->json);
      }
    }
    return out;
  };

  if (runtime.ok() && !finished) {
    // The headless Service JobSet makes for the pods' DNS names.
    json service = {{"metadata",
                     {{"name", name},
                      {"labels", {{kJobSetName, name}}},
                      {"ownerReferences",
                       {{{"apiVersion", absl::StrCat(kGroup, "/v1alpha1")},
                         {"kind", "TrainJob"},
                         {"name", name},
                         {"uid", uid},
                         {"controller", true},
                         {"blockOwnerDeletion", true}}}}}},
                    {"spec",
                     {{"clusterIP", "None"},
                      {"selector", {{kJobSetName, name}}},
                      {"publishNotReadyAddresses", true}}}};
    if (!store_.Get(services_, namespace_, name).ok()) {
      (void)store_.Create(services_, namespace_, std::move(service));
    }
    const json& trainer = Field(spec, "trainer");
    for (const auto& rj : replicated_jobs) {
      const std::string rj_name = StringField(rj, "name");
      // dependsOn: a replicatedJob starts once those it depends on are Ready (or Complete).
      bool blocked = false;
      const json& depends = Field(rj, "dependsOn");
      for (size_t d = 0; depends.is_array() && d < depends.size(); ++d) {
        auto deps = jobs_of(StringField(depends[d], "name"));
        bool need_complete = StringField(depends[d], "status") == "Complete";
        if (deps.empty()) blocked = true;
        for (const json* dj : deps) {
          if (need_complete ? !JobConditionTrue(*dj, "Complete")
                            : !(JobReady(*dj) || JobConditionTrue(*dj, "Complete"))) {
            blocked = true;
          }
        }
      }
      if (blocked) continue;
      const int64_t replicas = IntField(rj, "replicas", 1);
      const json& tmpl = Field(rj, "template");
      const bool is_trainer =
          StringField(Field(Field(tmpl, "metadata"), "labels"), kAncestorLabel) == "trainer" ||
          rj_name == "node";
      for (int64_t i = 0; i < replicas; ++i) {
        const std::string job_name = absl::StrCat(name, "-", rj_name, "-", i);
        auto existing = std::find_if(jobs.begin(), jobs.end(), [&](const ObjectPtr& j) {
          return StringField(j->json["metadata"], "name") == job_name;
        });
        if (existing != jobs.end()) {
          if (BoolField(Field((*existing)->json, "spec"), "suspend") != suspend) {
            (void)store_.Mutate(jobs_, namespace_, job_name, false, Writer::kController,
                                [&](json& j) {
                                  j["spec"]["suspend"] = suspend;
                                  return absl::OkStatus();
                                });
          }
          continue;
        }
        json labels = {{kJobSetName, name},
                       {kJobSetUid, uid},
                       {kReplicatedJobName, rj_name},
                       {kReplicatedJobReplicas, std::to_string(replicas)},
                       {kJobIndex, std::to_string(i)}};
        json job_meta = Field(tmpl, "metadata");
        if (!job_meta.is_object()) job_meta = json::object();
        job_meta.erase("name");
        job_meta.erase("generateName");
        job_meta["name"] = job_name;
        AddLabels(job_meta, labels);
        job_meta["ownerReferences"] = {{{"apiVersion", absl::StrCat(kGroup, "/v1alpha1")},
                                        {"kind", "TrainJob"},
                                        {"name", name},
                                        {"uid", uid},
                                        {"controller", true},
                                        {"blockOwnerDeletion", true}}};
        json job_spec = Field(tmpl, "spec");
        if (!job_spec.is_object()) job_spec = json::object();
        if (!job_spec.contains("completionMode")) job_spec["completionMode"] = "Indexed";
        job_spec["suspend"] = suspend;
        json& pod_template = job_spec["template"];
        if (!pod_template.is_object()) pod_template = json::object();
        json& pod_meta = pod_template["metadata"];
        if (!pod_meta.is_object()) pod_meta = json::object();
        AddLabels(pod_meta, labels);
        json& pod_spec = pod_template["spec"];
        if (!pod_spec.is_object()) pod_spec = json::object();
        if (!pod_spec.contains("restartPolicy")) pod_spec["restartPolicy"] = "OnFailure";
        if (!pod_spec.contains("subdomain")) pod_spec["subdomain"] = name;
        if (is_trainer) {
          int64_t nodes = IntField(trainer, "numNodes", IntField(ml_policy, "numNodes", 1));
          job_spec["parallelism"] = nodes;
          job_spec["completions"] = nodes;
          json& containers = pod_spec["containers"];
          if (!containers.is_array()) containers = json::array();
          auto node = std::find_if(containers.begin(), containers.end(),
                                   [](const json& c) { return StringField(c, "name") == "node"; });
          if (node != containers.end()) {
            json& c = *node;
            if (!StringField(trainer, "image").empty()) c["image"] = trainer["image"];
            if (trainer.contains("command")) c["command"] = trainer["command"];
            if (trainer.contains("args")) c["args"] = trainer["args"];
            if (Field(trainer, "env").is_array()) UpsertEnv(c, trainer["env"]);
            if (trainer.contains("resourcesPerNode")) c["resources"] = trainer["resourcesPerNode"];
            const json& torch = Field(ml_policy, "torch");
            if (torch.is_object()) {
              json procs = Field(trainer, "numProcPerNode");
              if (procs.is_null()) procs = Field(torch, "numProcPerNode");
              std::string nproc = procs.is_null()     ? "auto"
                                  : procs.is_string() ? procs.get<std::string>()
                                                      : procs.dump();
              UpsertEnv(c, json::array({{{"name", "PET_NNODES"}, {"value", std::to_string(nodes)}},
                                        {{"name", "PET_NPROC_PER_NODE"}, {"value", nproc}},
                                        {{"name", "PET_NODE_RANK"},
                                         {"valueFrom",
                                          {{"fieldRef",
                                            {{"fieldPath",
                                              "metadata.annotations['batch.kubernetes.io/"
                                              "job-completion-index']"}}}}}},
                                        {{"name", "PET_MASTER_ADDR"},
                                         {"value", absl::StrCat(name, "-node-0-0.", name)}},
                                        {{"name", "PET_MASTER_PORT"},
                                         {"value", std::to_string(kTrainerPort)}}}));
              json& ports = c["ports"];
              if (!ports.is_array()) ports = json::array();
              if (std::none_of(ports.begin(), ports.end(), [](const json& p) {
                    return IntField(p, "containerPort", 0) == kTrainerPort;
                  })) {
                ports.push_back({{"containerPort", kTrainerPort}});
              }
            }
          }
        }
        json job = {{"apiVersion", "batch/v1"},
                    {"kind", "Job"},
                    {"metadata", job_meta},
                    {"spec", job_spec}};
        auto created = store_.Create(jobs_, namespace_, std::move(job));
        if (!created.ok() && created.status().code() != absl::StatusCode::kAlreadyExists) {
          RecordEvent(tj, "Warning", "TrainJobResourcesCreationFailed",
                      absl::StrCat("TrainJob resources reconciliation failed: ",
                                   created.status().message()));
          queue_->AddAfter(key, absl::Seconds(1));
        }
      }
    }
    jobs = owned_jobs();
  }

  // jobsStatus: one entry per replicatedJob (of the runtime, else of the Jobs there are).
  std::vector<std::string> rj_names;
  int64_t expected_jobs = 0;
  for (const auto& rj : replicated_jobs) {
    rj_names.push_back(StringField(rj, "name"));
    expected_jobs += IntField(rj, "replicas", 1);
  }
  for (const auto& j : jobs) {
    std::string rj = StringField(Field(j->json["metadata"], "labels"), kReplicatedJobName);
    if (!rj.empty() && std::find(rj_names.begin(), rj_names.end(), rj) == rj_names.end()) {
      rj_names.push_back(rj);
    }
  }
  json jobs_status = json::array();
  std::string first_failed;
  int64_t completed = 0;
  std::vector<std::string> unfinished;
  for (const auto& rj : rj_names) {
    int64_t ready = 0, succeeded = 0, failed = 0, active = 0, suspended = 0;
    for (const json* j : jobs_of(rj)) {
      const std::string jname = StringField((*j)["metadata"], "name");
      bool done = false;
      if (JobConditionTrue(*j, "Complete")) {
        ++succeeded;
        ++completed;
        done = true;
      } else if (JobConditionTrue(*j, "Failed")) {
        ++failed;
        if (first_failed.empty()) first_failed = jname;
        done = true;
      }
      if (!done) unfinished.push_back(jname);
      if (JobReady(*j) && !done) ++ready;
      if (IntField(Field(*j, "status"), "active", 0) > 0 &&
          Field((*j)["metadata"], "deletionTimestamp").is_null()) {
        ++active;
      }
      if (BoolField(Field(*j, "spec"), "suspend")) ++suspended;
    }
    jobs_status.push_back({{"name", rj},
                           {"ready", ready},
                           {"succeeded", succeeded},
                           {"failed", failed},
                           {"active", active},
                           {"suspended", suspended}});
  }
  status["jobsStatus"] = jobs_status;

  // Trainer's own Suspended condition.
  if (suspend) {
    SetCondition(status, "Suspended", true, "Suspended", "TrainJob is suspended");
  } else if (ConditionTrue(status, "Suspended")) {
    SetCondition(status, "Suspended", false, "Resumed", "TrainJob is resumed");
  }
  auto delete_unfinished = [&] {
    for (const auto& jname : unfinished) {
      (void)store_.Delete(jobs_, namespace_, jname,
                          DeleteOptions{.propagation_policy = "Background"});
    }
  };
  if (!finished) {
    // Complete and Failed are copied from JobSet's Completed and Failed conditions.
    if (!first_failed.empty()) {
      SetCondition(status, "Failed", true, "FailedJobs",
                   absl::StrCat("jobset failed due to one or more job failures (first failed job: ",
                                first_failed, ")"));
      delete_unfinished();
    } else if (runtime.ok() && expected_jobs > 0 && completed >= expected_jobs) {
      SetCondition(status, "Complete", true, "AllJobsCompleted", "jobset completed successfully");
    } else {
      const int64_t deadline = IntField(spec, "activeDeadlineSeconds", 0);
      if (deadline > 0 && !suspend) {
        auto start = ParseRfc3339(StringField(meta, "creationTimestamp"));
        const json* resumed = FindCondition(status, "Suspended");
        if (resumed && StringField(*resumed, "status") == "False") {
          start = ParseRfc3339(StringField(*resumed, "lastTransitionTime"));
        }
        if (start) {
          auto end = *start + std::chrono::seconds(deadline);
          if (std::chrono::system_clock::now() >= end) {
            SetCondition(status, "Failed", true, "DeadlineExceeded",
                         "TrainJob exceeded its active deadline");
            delete_unfinished();
          } else {
            queue_->AddAfter(key, absl::FromChrono(end - std::chrono::system_clock::now()) +
                                      absl::Milliseconds(50));
          }
        }
      }
    }
  }
  (void)store_.Mutate(trainjobs_, namespace_, name, /*status_write=*/true, Writer::kController,
                      [&](json& obj) {
                        if (StringField(obj["metadata"], "uid") != uid) {
                          return absl::AbortedError("replaced");
                        }
                        obj["status"] = status;
                        return absl::OkStatus();
                      });
}

}  // namespace submarine::testing::fake_kube
