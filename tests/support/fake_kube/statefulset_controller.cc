#include "tests/support/fake_kube/statefulset_controller.h"

#include <map>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/support/fake_kube/names.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

const EventRecorder::Source kSource{"statefulset-controller", ""};

const json* PodCondition(const json& pod, const std::string& type) {
  const json& conditions = Field(Field(pod, "status"), "conditions");
  for (size_t i = 0; conditions.is_array() && i < conditions.size(); ++i) {
    if (StringField(conditions[i], "type") == type) return &conditions[i];
  }
  return nullptr;
}

bool Terminating(const json& pod) {
  return !Field(Field(pod, "metadata"), "deletionTimestamp").is_null();
}

std::string PhaseOf(const json& pod) { return StringField(Field(pod, "status"), "phase"); }

// isRunningAndReady.
bool RunningAndReady(const json& pod) {
  const json* ready = PodCondition(pod, "Ready");
  return PhaseOf(pod) == "Running" && ready && StringField(*ready, "status") == "True";
}

// isHealthy: running, ready and not being deleted.
bool Healthy(const json& pod) { return RunningAndReady(pod) && !Terminating(pod); }

// isRunningAndAvailable: ready for at least minReadySeconds; `*wait` is how long until it is.
bool Available(const json& pod, int64_t min_ready_seconds, std::optional<absl::Duration>* wait) {
  if (!RunningAndReady(pod)) return false;
  if (min_ready_seconds <= 0) return true;
  auto since = ParseRfc3339(StringField(*PodCondition(pod, "Ready"), "lastTransitionTime"));
  if (!since) return false;
  auto left = *since + std::chrono::seconds(min_ready_seconds) - std::chrono::system_clock::now();
  if (left <= std::chrono::seconds(0)) return true;
  absl::Duration d = absl::FromChrono(left) + absl::Milliseconds(50);
  if (!*wait || d < **wait) *wait = d;
  return false;
}

// The ordinal of a pod `<set>-<n>` of `set`, or -1.
int64_t OrdinalOf(const std::string& set, const std::string& pod) {
  if (pod.size() <= set.size() + 1 || pod.compare(0, set.size(), set) != 0 ||
      pod[set.size()] != '-') {
    return -1;
  }
  std::string digits = pod.substr(set.size() + 1);
  if (digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  int64_t n;
  return absl::SimpleAtoi(digits, &n) ? n : -1;
}

// `<set>-<hash of the template>`: the revision name, as a ControllerRevision's, whose hash is
// FNV-32a rendered as its decimal digits in the safe alphabet (rand.SafeEncodeString).
std::string RevisionName(const std::string& set, const json& tmpl) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : tmpl.dump()) {
    hash ^= c;
    hash *= 16777619u;
  }
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string encoded;
  for (char c : std::to_string(hash)) encoded.push_back(kAlphabet[c % (sizeof(kAlphabet) - 1)]);
  return absl::StrCat(set, "-", encoded);
}

}  // namespace

StatefulSetController::StatefulSetController(ObjectStore& store, EventRecorder& events)
    : store_(store),
      events_(events),
      sets_(*store.catalog().Find("apps", "v1", "statefulsets")),
      pods_(*store.catalog().Find("", "v1", "pods")) {}

StatefulSetController::~StatefulSetController() { Stop(); }

void StatefulSetController::Start() {
  const int sets_index = store_.catalog().IndexOf(sets_);
  const int pods_index = store_.catalog().IndexOf(pods_);
  store_.Subscribe([queue = queue_, sets_index, pods_index](const StoreEvent& e) {
    const json& meta = e.object->json["metadata"];
    const std::string ns = StringField(meta, "namespace");
    if (e.type_index == sets_index) {
      queue->Add(ns + "/" + StringField(meta, "name"));
    } else if (e.type_index == pods_index) {
      const json* ref = ControllerRef(e.object->json);
      if (ref && StringField(*ref, "kind") == "StatefulSet" &&
          StringField(*ref, "apiVersion") == "apps/v1") {
        queue->Add(ns + "/" + StringField(*ref, "name"));
      }
    }
  });
  thread_ = std::thread([this] { Run(); });
}

void StatefulSetController::Stop() {
  queue_->ShutDown();
  if (thread_.joinable()) thread_.join();
}

void StatefulSetController::Run() {
  std::string key;
  while (queue_->Get(&key)) {
    size_t slash = key.find('/');
    Sync(key.substr(0, slash), key.substr(slash + 1));
  }
}

void StatefulSetController::Sync(const std::string& namespace_, const std::string& name) {
  const std::string key = namespace_ + "/" + name;
  auto got = store_.Get(sets_, namespace_, name);
  if (!got.ok()) return;  // its pods go with it (garbage collection)
  const json& set = (*got)->json;
  const json& meta = set["metadata"];
  const std::string uid = StringField(meta, "uid");
  const json& spec = Field(set, "spec");
  json status = Field(set, "status");
  if (!status.is_object()) status = json::object();
  const int64_t replicas = IntField(spec, "replicas", 1);
  const int64_t start = IntField(Field(spec, "ordinals"), "start", 0);
  const bool monotonic = StringField(spec, "podManagementPolicy") != "Parallel";
  const int64_t min_ready = IntField(spec, "minReadySeconds", 0);
  const json& strategy = Field(spec, "updateStrategy");
  const bool rolling = StringField(strategy, "type") != "OnDelete";
  const int64_t partition = IntField(Field(strategy, "rollingUpdate"), "partition", 0);
  const json& tmpl = Field(spec, "template");
  const std::string update_revision = RevisionName(name, tmpl);
  std::string current_revision = StringField(status, "currentRevision");
  if (current_revision.empty()) current_revision = update_revision;
  std::optional<absl::Duration> recheck;

  // The pods this set controls, by ordinal.
  auto owned_pods = [&] {
    std::map<int64_t, json> out;
    for (const auto& pod : store_.Dependents(uid)) {
      const json& p = pod->json;
      if (StringField(p, "kind") != "Pod") continue;
      const json* ref = ControllerRef(p);
      if (!ref || StringField(*ref, "uid") != uid) continue;
      int64_t ordinal = OrdinalOf(name, StringField(p["metadata"], "name"));
      if (ordinal >= 0) out[ordinal] = p;
    }
    return out;
  };
  std::map<int64_t, json> pods = owned_pods();
  auto in_range = [&](int64_t o) { return o >= start && o < start + replicas; };

  auto create = [&](int64_t ordinal) {
    const std::string pod_name = absl::StrCat(name, "-", ordinal);
    json labels = Field(Field(tmpl, "metadata"), "labels");
    if (!labels.is_object()) labels = json::object();
    labels[kPodNameLabel] = pod_name;
    labels[kPodIndexLabel] = std::to_string(ordinal);
    labels[kRevisionLabel] = update_revision;
    json pod_meta = {{"name", pod_name},
                     {"generateName", name + "-"},
                     {"labels", labels},
                     {"ownerReferences",
                      {{{"apiVersion", "apps/v1"},
                        {"kind", "StatefulSet"},
                        {"name", name},
                        {"uid", uid},
                        {"controller", true},
                        {"blockOwnerDeletion", true}}}}};
    const json& annotations = Field(Field(tmpl, "metadata"), "annotations");
    if (annotations.is_object() && !annotations.empty()) pod_meta["annotations"] = annotations;
    json pod_spec = Field(tmpl, "spec");
    pod_spec["hostname"] = pod_name;
    if (!StringField(spec, "serviceName").empty()) {
      pod_spec["subdomain"] = StringField(spec, "serviceName");
    }
    json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", pod_meta}, {"spec", pod_spec}};
    auto created = store_.Create(pods_, namespace_, std::move(pod));
    if (!created.ok()) {
      events_.Record(kSource, set, "", "Warning", "FailedCreate",
                     absl::StrCat("create Pod ", pod_name, " in StatefulSet ", name,
                                  " failed error: ", created.status().message()));
      recheck = absl::Seconds(1);
      return;
    }
    pods[ordinal] = (*created)->json;
    events_.Record(kSource, set, "", "Normal", "SuccessfulCreate",
                   absl::StrCat("create Pod ", pod_name, " in StatefulSet ", name, " successful"));
  };
  auto remove = [&](int64_t ordinal) {
    const json& pod_meta = pods[ordinal]["metadata"];
    const std::string pod_name = StringField(pod_meta, "name");
    auto deleted = store_.Delete(pods_, namespace_, pod_name,
                                 DeleteOptions{.precondition_uid = StringField(pod_meta, "uid")});
    if (!deleted.ok()) return;
    if (deleted->removed) {
      pods.erase(ordinal);
    } else {
      pods[ordinal] = deleted->object->json;
    }
    events_.Record(kSource, set, "", "Normal", "SuccessfulDelete",
                   absl::StrCat("delete Pod ", pod_name, " in StatefulSet ", name, " successful"));
  };

  // A set being deleted only has its status kept (its pods go through garbage collection).
  bool blocked = !Field(meta, "deletionTimestamp").is_null();
  // The first unhealthy pod: of the replicas in ascending order, then the condemned descending.
  std::optional<int64_t> first_unhealthy;
  for (int64_t o = start; o < start + replicas && !first_unhealthy; ++o) {
    if (!pods.count(o) || !Healthy(pods[o])) first_unhealthy = o;
  }
  for (auto it = pods.rbegin(); it != pods.rend() && !first_unhealthy; ++it) {
    if (!in_range(it->first) && !Healthy(it->second)) first_unhealthy = it->first;
  }
  // The replicas, in ordinal order: OrderedReady stops at the first one not Running and Ready.
  for (int64_t o = start; o < start + replicas && !blocked; ++o) {
    auto it = pods.find(o);
    if (it == pods.end()) {
      create(o);
      blocked = monotonic;
      continue;
    }
    const std::string phase = PhaseOf(it->second);
    if (phase == "Failed" || phase == "Succeeded") {
      // Replaced on a later sync, once the old object is gone.
      if (!Terminating(it->second)) remove(o);
      blocked = monotonic;
      continue;
    }
    if (monotonic && (Terminating(it->second) || !Available(it->second, min_ready, &recheck))) {
      blocked = true;
    }
  }
  // The condemned (past the replicas), highest ordinal first: all at once under Parallel, else
  // one at a time, each gone before the next.
  std::vector<int64_t> condemned;
  for (auto it = pods.rbegin(); it != pods.rend(); ++it) {
    if (!in_range(it->first)) condemned.push_back(it->first);
  }
  for (int64_t o : condemned) {
    if (blocked) break;
    if (Terminating(pods[o])) {
      blocked = monotonic;
      continue;
    }
    if (monotonic && first_unhealthy != o &&
        (!RunningAndReady(pods[o]) || !Available(pods[o], min_ready, &recheck))) {
      blocked = true;
      break;
    }
    remove(o);
    blocked = monotonic;
  }
  // RollingUpdate: the highest pod of an old revision goes (down to the partition), once every
  // pod above it is healthy.
  if (!blocked && rolling) {
    for (int64_t o = start + replicas - 1; o >= start + partition; --o) {
      auto it = pods.find(o);
      if (it == pods.end()) break;
      const json& pod = it->second;
      if (StringField(Field(pod["metadata"], "labels"), kRevisionLabel) != update_revision &&
          !Terminating(pod)) {
        remove(o);
        break;
      }
      if (!Healthy(pod)) break;
    }
  }

  // Status, from the pods as they are now.
  int64_t created = 0, ready = 0, available = 0, current = 0, updated = 0;
  for (const auto& [ordinal, pod] : owned_pods()) {
    if (!PhaseOf(pod).empty()) ++created;
    if (RunningAndReady(pod)) {
      ++ready;
      if (Available(pod, min_ready, &recheck)) ++available;
    }
    if (!Terminating(pod)) {
      const std::string revision = StringField(Field(pod["metadata"], "labels"), kRevisionLabel);
      if (revision == current_revision) ++current;
      if (revision == update_revision) ++updated;
    }
  }
  if (rolling && updated == created && ready == created) {
    current_revision = update_revision;
    current = updated;
  }
  auto set_or_omit = [&](const char* field, int64_t value) {
    if (value > 0) {
      status[field] = value;
    } else {
      status.erase(field);
    }
  };
  status["observedGeneration"] = IntField(meta, "generation", 1);
  status["replicas"] = created;
  set_or_omit("readyReplicas", ready);
  set_or_omit("currentReplicas", current);
  set_or_omit("updatedReplicas", updated);
  status["availableReplicas"] = available;
  status["currentRevision"] = current_revision;
  status["updateRevision"] = update_revision;
  status["collisionCount"] = 0;
  (void)store_.Mutate(sets_, namespace_, name, /*status_write=*/true, Writer::kController,
                      [&](json& s) {
                        if (StringField(s["metadata"], "uid") != uid) {
                          return absl::AbortedError("statefulset replaced");
                        }
                        s["status"] = status;
                        return absl::OkStatus();
                      });
  if (recheck) queue_->AddAfter(key, *recheck);
}

}  // namespace submarine::testing::fake_kube
