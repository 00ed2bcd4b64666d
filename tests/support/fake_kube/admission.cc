#include "tests/support/fake_kube/admission.h"

#include <algorithm>
#include <atomic>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/support/fake_kube/api_errors.h"
#include "tests/support/fake_kube/names.h"
#include "tests/support/fake_kube/resource_catalog.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

std::string Quote(const std::string& s) { return json(s).dump(); }

FieldError Required(const std::string& field, const std::string& why = "") {
  return {field, "FieldValueRequired", why.empty() ? "Required value" : "Required value: " + why};
}

FieldError Invalid(const std::string& field, const json& value, const std::string& why) {
  return {field, "FieldValueInvalid", absl::StrCat("Invalid value: ", value.dump(), ": ", why)};
}

FieldError NotSupported(const std::string& field, const std::string& value,
                        const std::vector<std::string>& supported) {
  std::vector<std::string> quoted;
  for (const auto& s : supported) quoted.push_back(Quote(s));
  return {field, "FieldValueNotSupported",
          absl::StrCat("Unsupported value: ", Quote(value),
                       ": supported values: ", absl::StrJoin(quoted, ", "))};
}

bool IsTerminal(const std::string& phase) { return phase == "Succeeded" || phase == "Failed"; }

void ValidateMetadata(const json& obj, std::vector<FieldError>& errors) {
  const json& meta = Field(obj, "metadata");
  for (const char* map_field : {"labels", "annotations"}) {
    const json& m = Field(meta, map_field);
    if (m.is_null()) continue;
    std::string path = absl::StrCat("metadata.", map_field);
    if (!m.is_object()) {
      errors.push_back(Invalid(path, m, "must be a map of strings"));
      continue;
    }
    for (auto it = m.begin(); it != m.end(); ++it) {
      std::string problem = QualifiedNameProblem(it.key());
      if (!problem.empty()) errors.push_back(Invalid(path, it.key(), problem));
      if (!it->is_string()) {
        errors.push_back(Invalid(absl::StrCat(path, "[", it.key(), "]"), *it, "must be a string"));
      } else if (std::string(map_field) == "labels") {
        problem = LabelValueProblem(it->get<std::string>());
        if (!problem.empty()) errors.push_back(Invalid(path, *it, problem));
      }
    }
  }
  const json& refs = Field(meta, "ownerReferences");
  if (!refs.is_null()) {
    int controllers = 0;
    for (size_t i = 0; refs.is_array() && i < refs.size(); ++i) {
      std::string path = absl::StrCat("metadata.ownerReferences[", i, "]");
      for (const char* f : {"apiVersion", "kind", "name", "uid"}) {
        if (StringField(refs[i], f).empty()) {
          errors.push_back(
              Invalid(absl::StrCat(path, ".", f), "", absl::StrCat(f, " must not be empty")));
        }
      }
      if (BoolField(refs[i], "controller")) ++controllers;
    }
    if (controllers > 1) {
      errors.push_back(Invalid("metadata.ownerReferences", refs,
                               "Only one reference can have Controller set to true"));
    }
  }
  const json& finalizers = Field(meta, "finalizers");
  for (size_t i = 0; finalizers.is_array() && i < finalizers.size(); ++i) {
    if (!finalizers[i].is_string() ||
        !QualifiedNameProblem(finalizers[i].get<std::string>()).empty()) {
      errors.push_back(Invalid(absl::StrCat("metadata.finalizers[", i, "]"), finalizers[i],
                               "name is neither a standard finalizer name nor is it fully "
                               "qualified"));
    }
  }
}

bool HasResources(const json& container) {
  const json& r = Field(container, "resources");
  return !Field(r, "limits").empty() || !Field(r, "requests").empty();
}

std::string QosClass(const json& spec) {
  const json& containers = Field(spec, "containers");
  bool any = false, guaranteed = true;
  for (const auto& c : containers) {
    if (HasResources(c)) any = true;
    const json& limits = Field(Field(c, "resources"), "limits");
    const json& requests = Field(Field(c, "resources"), "requests");
    for (const char* res : {"cpu", "memory"}) {
      if (Field(limits, res).is_null()) guaranteed = false;
      if (!Field(requests, res).is_null() && Field(requests, res) != Field(limits, res)) {
        guaranteed = false;
      }
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

void DefaultContainer(json& c) {
  if (!c.is_object()) return;
  if (!c.contains("terminationMessagePath")) c["terminationMessagePath"] = "/dev/termination-log";
  if (!c.contains("terminationMessagePolicy")) c["terminationMessagePolicy"] = "File";
  if (!c.contains("resources")) c["resources"] = json::object();
  if (!c.contains("imagePullPolicy")) {
    std::string image = StringField(c, "image");
    std::string last = image.substr(
        image.find_last_of('/') == std::string::npos ? 0 : image.find_last_of('/') + 1);
    bool latest = last.find(':') == std::string::npos || absl::EndsWith(last, ":latest");
    c["imagePullPolicy"] =
        latest && last.find('@') == std::string::npos ? "Always" : "IfNotPresent";
  }
  if (c.contains("ports") && c["ports"].is_array()) {
    for (auto& p : c["ports"]) {
      if (p.is_object() && !p.contains("protocol")) p["protocol"] = "TCP";
    }
  }
}

void DefaultPodSpec(json& spec, bool in_template) {
  if (!spec.is_object()) return;
  if (!in_template && !spec.contains("restartPolicy")) spec["restartPolicy"] = "Always";
  if (!spec.contains("terminationGracePeriodSeconds")) spec["terminationGracePeriodSeconds"] = 30;
  if (!spec.contains("dnsPolicy")) spec["dnsPolicy"] = "ClusterFirst";
  if (!spec.contains("schedulerName")) spec["schedulerName"] = "default-scheduler";
  if (!spec.contains("securityContext")) spec["securityContext"] = json::object();
  for (const char* list : {"containers", "initContainers"}) {
    if (spec.contains(list) && spec[list].is_array()) {
      for (auto& c : spec[list]) DefaultContainer(c);
    }
  }
}

void ValidatePodSpec(const json& spec, const std::string& path, bool job_template,
                     std::vector<FieldError>& errors) {
  const json& containers = Field(spec, "containers");
  if (!containers.is_array() || containers.empty()) {
    errors.push_back(Required(path + ".containers"));
  } else {
    std::set<std::string> names;
    for (size_t i = 0; i < containers.size(); ++i) {
      std::string cpath = absl::StrCat(path, ".containers[", i, "]");
      std::string name = StringField(containers[i], "name");
      if (name.empty()) {
        errors.push_back(Required(cpath + ".name"));
      } else if (!Dns1123LabelProblem(name).empty()) {
        errors.push_back(Invalid(cpath + ".name", name, Dns1123LabelProblem(name)));
      } else if (!names.insert(name).second) {
        errors.push_back({cpath + ".name", "FieldValueDuplicate",
                          absl::StrCat("Duplicate value: ", Quote(name))});
      }
      if (StringField(containers[i], "image").empty()) errors.push_back(Required(cpath + ".image"));
      const json& command = Field(containers[i], "command");
      if (!command.is_null() && !command.is_array()) {
        errors.push_back(Invalid(cpath + ".command", command, "must be a list of strings"));
      }
    }
  }
  std::string policy = StringField(spec, "restartPolicy");
  if (job_template) {
    if (policy.empty()) {
      errors.push_back(Required(path + ".restartPolicy", "valid values: \"OnFailure\", \"Never\""));
    } else if (policy != "OnFailure" && policy != "Never") {
      errors.push_back(NotSupported(path + ".restartPolicy", policy, {"OnFailure", "Never"}));
    }
  } else if (policy != "Always" && policy != "OnFailure" && policy != "Never") {
    errors.push_back(
        NotSupported(path + ".restartPolicy", policy, {"Always", "OnFailure", "Never"}));
  }
  for (const char* f : {"hostname", "subdomain"}) {
    std::string v = StringField(spec, f);
    if (!v.empty() && !Dns1123LabelProblem(v).empty()) {
      errors.push_back(Invalid(absl::StrCat(path, ".", f), v, Dns1123LabelProblem(v)));
    }
  }
}

void ValidateNonNegative(const json& spec, const char* field, const std::string& path,
                         std::vector<FieldError>& errors) {
  const json& v = Field(spec, field);
  if (v.is_null()) return;
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    errors.push_back(
        Invalid(absl::StrCat(path, ".", field), v, "must be greater than or equal to 0"));
  }
}

absl::Status AdmitPod(const ResourceType& type, json& obj, const std::string& name) {
  json& spec = obj["spec"];
  DefaultPodSpec(spec, false);
  std::vector<FieldError> errors;
  ValidateMetadata(obj, errors);
  ValidatePodSpec(spec, "spec", false, errors);
  if (!errors.empty()) return InvalidErrors(type, name, errors);
  obj["status"] = {{"phase", "Pending"}, {"qosClass", QosClass(spec)}};
  return absl::OkStatus();
}

absl::Status AdmitJob(const ResourceType& type, json& obj, const std::string& name) {
  json& spec = obj["spec"];
  if (!spec.is_object()) spec = json::object();
  const std::string uid = obj["metadata"]["uid"].get<std::string>();
  std::vector<FieldError> errors;
  ValidateMetadata(obj, errors);
  if (name.size() > 63)
    errors.push_back(Invalid("metadata.name", name, "must be no more than 63 characters"));
  // Defaults (pkg/apis/batch/v1/defaults.go).
  if (!spec.contains("completions") && !spec.contains("parallelism")) {
    spec["completions"] = 1;
    spec["parallelism"] = 1;
  }
  if (!spec.contains("parallelism")) spec["parallelism"] = 1;
  if (!spec.contains("backoffLimit")) {
    // With per-index limits the global one is off unless given.
    spec["backoffLimit"] = spec.contains("backoffLimitPerIndex") ? 2147483647 : 6;
  }
  if (!spec.contains("completionMode")) spec["completionMode"] = "NonIndexed";
  if (!spec.contains("suspend")) spec["suspend"] = false;
  if (!spec.contains("podReplacementPolicy")) spec["podReplacementPolicy"] = "TerminatingOrFailed";
  if (!BoolField(spec, "manualSelector")) {
    spec["selector"] = {{"matchLabels", {{"batch.kubernetes.io/controller-uid", uid}}}};
  }
  json& tmpl = spec["template"];
  if (!tmpl.is_object()) tmpl = json::object();
  json& tmeta = tmpl["metadata"];
  if (!tmeta.is_object()) tmeta = json::object();
  json& labels = tmeta["labels"];
  if (!labels.is_object()) labels = json::object();
  if (!BoolField(spec, "manualSelector")) {
    labels["batch.kubernetes.io/controller-uid"] = uid;
    labels["batch.kubernetes.io/job-name"] = name;
    labels["controller-uid"] = uid;
    labels["job-name"] = name;
  }
  if (!tmpl.contains("spec") || !tmpl["spec"].is_object()) tmpl["spec"] = json::object();
  DefaultPodSpec(tmpl["spec"], true);
  ValidatePodSpec(tmpl["spec"], "spec.template.spec", true, errors);
  for (const char* f :
       {"parallelism", "completions", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes"}) {
    ValidateNonNegative(spec, f, "spec", errors);
  }
  if (spec.contains("backoffLimitPerIndex") && StringField(spec, "completionMode") != "Indexed") {
    errors.push_back({"spec.backoffLimitPerIndex", "FieldValueForbidden",
                      "Forbidden: requires indexed completion mode"});
  }
  if (spec.contains("maxFailedIndexes")) {
    if (!spec.contains("backoffLimitPerIndex")) {
      errors.push_back(Required("spec.backoffLimitPerIndex", "when maxFailedIndexes is specified"));
    } else if (spec["maxFailedIndexes"].is_number_integer() &&
               spec["completions"].is_number_integer() &&
               spec["maxFailedIndexes"].get<int64_t>() > spec["completions"].get<int64_t>()) {
      errors.push_back(Invalid("spec.maxFailedIndexes", spec["maxFailedIndexes"],
                               "must be less than or equal to completions"));
    }
  }
  const json& deadline = Field(spec, "activeDeadlineSeconds");
  if (!deadline.is_null() && (!deadline.is_number_integer() || deadline.get<int64_t>() <= 0)) {
    errors.push_back(Invalid("spec.activeDeadlineSeconds", deadline, "must be greater than 0"));
  }
  std::string mode = StringField(spec, "completionMode");
  if (mode != "NonIndexed" && mode != "Indexed") {
    errors.push_back(NotSupported("spec.completionMode", mode, {"NonIndexed", "Indexed"}));
  } else if (mode == "Indexed" && !spec["completions"].is_number_integer()) {
    errors.push_back(Required("spec.completions", "when completion mode is Indexed"));
  }
  if (!errors.empty()) return InvalidErrors(type, name, errors);
  obj.erase("status");
  return absl::OkStatus();
}

// A label map as Go's %#v renders it in a field error: map[string]string{"a":"1", "b":"2"}, or
// map[string]string(nil) when absent.
std::string GoStringMap(const json& labels) {
  if (!labels.is_object()) return "map[string]string(nil)";
  std::vector<std::string> parts;
  for (auto it = labels.begin(); it != labels.end(); ++it) {  // nlohmann keeps keys sorted
    parts.push_back(absl::StrCat(Quote(it.key()), ":", it->is_string() ? it->dump() : "\"\""));
  }
  return absl::StrCat("map[string]string{", absl::StrJoin(parts, ", "), "}");
}

// Whether `labels` satisfy a metav1.LabelSelector (matchLabels and matchExpressions).
bool SelectorMatches(const json& selector, const json& labels) {
  auto value = [&](const std::string& key) -> const json* {
    if (!labels.is_object()) return nullptr;
    auto it = labels.find(key);
    return it == labels.end() ? nullptr : &*it;
  };
  const json& match_labels = Field(selector, "matchLabels");
  for (auto it = match_labels.begin(); match_labels.is_object() && it != match_labels.end(); ++it) {
    const json* v = value(it.key());
    if (!v || *v != *it) return false;
  }
  const json& expressions = Field(selector, "matchExpressions");
  for (size_t i = 0; expressions.is_array() && i < expressions.size(); ++i) {
    const json& e = expressions[i];
    const json* v = value(StringField(e, "key"));
    const json& values = Field(e, "values");
    const bool in_values =
        v && values.is_array() && std::find(values.begin(), values.end(), *v) != values.end();
    const std::string op = StringField(e, "operator");
    if ((op == "In" && !in_values) || (op == "NotIn" && in_values) || (op == "Exists" && !v) ||
        (op == "DoesNotExist" && v)) {
      return false;
    }
  }
  return true;
}

// pkg/apis/apps/v1 SetDefaults_StatefulSet, and the pod template's defaults.
void DefaultStatefulSet(json& obj) {
  json& spec = obj["spec"];
  if (!spec.is_object()) spec = json::object();
  if (!spec.contains("podManagementPolicy")) spec["podManagementPolicy"] = "OrderedReady";
  json& strategy = spec["updateStrategy"];
  if (!strategy.is_object()) strategy = json::object();
  if (!strategy.contains("type")) strategy["type"] = "RollingUpdate";
  if (StringField(strategy, "type") == "RollingUpdate") {
    json& rolling = strategy["rollingUpdate"];
    if (!rolling.is_object()) rolling = json::object();
    if (!rolling.contains("partition")) rolling["partition"] = 0;
  }
  if (!spec.contains("replicas")) spec["replicas"] = 1;
  if (!spec.contains("revisionHistoryLimit")) spec["revisionHistoryLimit"] = 10;
  json& retention = spec["persistentVolumeClaimRetentionPolicy"];
  if (!retention.is_object()) retention = json::object();
  if (!retention.contains("whenDeleted")) retention["whenDeleted"] = "Retain";
  if (!retention.contains("whenScaled")) retention["whenScaled"] = "Retain";
  json& tmpl = spec["template"];
  if (!tmpl.is_object()) tmpl = json::object();
  if (!tmpl.contains("spec") || !tmpl["spec"].is_object()) tmpl["spec"] = json::object();
  json& pod_spec = tmpl["spec"];
  if (!pod_spec.contains("restartPolicy")) pod_spec["restartPolicy"] = "Always";
  DefaultPodSpec(pod_spec, true);
}

// pkg/apis/apps/validation ValidateStatefulSetSpec (the parts that matter here).
void ValidateStatefulSetSpec(const json& spec, std::vector<FieldError>& errors) {
  const std::string policy = StringField(spec, "podManagementPolicy");
  if (policy != "OrderedReady" && policy != "Parallel") {
    errors.push_back(
        NotSupported("spec.podManagementPolicy", policy, {"OrderedReady", "Parallel"}));
  }
  const json& strategy = Field(spec, "updateStrategy");
  const std::string strategy_type = StringField(strategy, "type");
  if (strategy_type != "RollingUpdate" && strategy_type != "OnDelete") {
    errors.push_back(
        NotSupported("spec.updateStrategy.type", strategy_type, {"OnDelete", "RollingUpdate"}));
  }
  if (strategy_type == "OnDelete" && strategy.contains("rollingUpdate")) {
    errors.push_back(Invalid("spec.updateStrategy.rollingUpdate", "object",
                             "only allowed for updateStrategy 'RollingUpdate'"));
  }
  ValidateNonNegative(Field(strategy, "rollingUpdate"), "partition",
                      "spec.updateStrategy.rollingUpdate", errors);
  for (const char* f : {"replicas", "minReadySeconds", "revisionHistoryLimit"}) {
    ValidateNonNegative(spec, f, "spec", errors);
  }
  ValidateNonNegative(Field(spec, "ordinals"), "start", "spec.ordinals", errors);
  const std::string service = StringField(spec, "serviceName");
  if (!service.empty() && !Dns1035LabelProblem(service).empty()) {
    errors.push_back(Invalid("spec.serviceName", service, Dns1035LabelProblem(service)));
  }
  const json& selector = Field(spec, "selector");
  const json& tmpl = Field(spec, "template");
  const json& template_labels = Field(Field(tmpl, "metadata"), "labels");
  if (selector.is_null()) {
    errors.push_back(Required("spec.selector"));
  } else if (Field(selector, "matchLabels").empty() &&
             Field(selector, "matchExpressions").empty()) {
    errors.push_back(
        Invalid("spec.selector", "object", "empty selector is invalid for statefulset"));
  }
  // A missing selector selects nothing, so it does not match the template either (as real).
  if (selector.is_null() || !SelectorMatches(selector, template_labels)) {
    errors.push_back({"spec.template.metadata.labels", "FieldValueInvalid",
                      absl::StrCat("Invalid value: ", GoStringMap(template_labels),
                                   ": `selector` does not match template `labels`")});
  }
  const json& pod_spec = Field(tmpl, "spec");
  ValidatePodSpec(pod_spec, "spec.template.spec", false, errors);
  std::string restart = StringField(pod_spec, "restartPolicy");
  if (restart != "Always") {
    // ValidatePodSpec accepts any policy: a StatefulSet's pods must always restart.
    errors.erase(std::remove_if(errors.begin(), errors.end(),
                                [](const FieldError& e) {
                                  return e.field == "spec.template.spec.restartPolicy";
                                }),
                 errors.end());
    errors.push_back(NotSupported("spec.template.spec.restartPolicy", restart, {"Always"}));
  }
  const json& containers = Field(pod_spec, "containers");
  for (size_t i = 0; containers.is_array() && i < containers.size(); ++i) {
    const json& probe = Field(containers[i], "readinessProbe");
    if (probe.is_null()) continue;
    std::string path = absl::StrCat("spec.template.spec.containers[", i, "].readinessProbe");
    for (const char* f :
         {"periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"}) {
      const json& v = Field(probe, f);
      if (!v.is_null() && (!v.is_number_integer() || v.get<int64_t>() < 1)) {
        errors.push_back(
            Invalid(absl::StrCat(path, ".", f), v, "must be greater than or equal to 1"));
      }
    }
    ValidateNonNegative(probe, "initialDelaySeconds", path, errors);
    int handlers = 0;
    for (const char* h : {"httpGet", "tcpSocket", "exec", "grpc"}) {
      if (!Field(probe, h).is_null()) ++handlers;
    }
    if (handlers == 0) {
      errors.push_back(Required(path, "must specify a handler type"));
    } else if (handlers > 1) {
      errors.push_back(
          {path, "FieldValueForbidden", "Forbidden: may not specify more than 1 handler type"});
    }
  }
}

absl::Status AdmitStatefulSet(const ResourceType& type, json& obj, const std::string& name) {
  DefaultStatefulSet(obj);
  std::vector<FieldError> errors;
  ValidateMetadata(obj, errors);
  ValidateStatefulSetSpec(obj["spec"], errors);
  if (!errors.empty()) return InvalidErrors(type, name, errors);
  // apps/v1 StatefulSetStatus: replicas and availableReplicas are not omitempty.
  obj["status"] = {{"replicas", 0}, {"availableReplicas", 0}};
  return absl::OkStatus();
}

absl::Status AdmitService(const ResourceType& type, json& obj, const std::string& name) {
  static std::atomic<uint32_t> next_ip{10};
  json& spec = obj["spec"];
  if (!spec.is_object()) spec = json::object();
  std::vector<FieldError> errors;
  ValidateMetadata(obj, errors);
  std::string cluster_ip = StringField(spec, "clusterIP");
  const json& ports = Field(spec, "ports");
  if (cluster_ip != "None" && (!ports.is_array() || ports.empty())) {
    errors.push_back(Required("spec.ports"));
  }
  if (!errors.empty()) return InvalidErrors(type, name, errors);
  if (cluster_ip.empty()) {
    uint32_t n = next_ip++;
    cluster_ip = absl::StrCat("10.96.", (n >> 8) & 0xff, ".", n & 0xff);
    spec["clusterIP"] = cluster_ip;
  }
  spec["clusterIPs"] = {cluster_ip};
  if (!spec.contains("type")) spec["type"] = "ClusterIP";
  if (!spec.contains("sessionAffinity")) spec["sessionAffinity"] = "None";
  if (spec.contains("ports") && spec["ports"].is_array()) {
    for (auto& p : spec["ports"]) {
      if (!p.is_object()) continue;
      if (!p.contains("protocol")) p["protocol"] = "TCP";
      if (!p.contains("targetPort") && p.contains("port")) p["targetPort"] = p["port"];
    }
  }
  obj["status"] = {{"loadBalancer", json::object()}};
  return absl::OkStatus();
}

// A Secret's write-only stringData, on every write: merged over data (base64) and dropped.
void FoldStringData(json& obj) {
  if (obj.contains("stringData") && obj["stringData"].is_object()) {
    for (auto it = obj["stringData"].begin(); it != obj["stringData"].end(); ++it) {
      if (it->is_string()) obj["data"][it.key()] = absl::Base64Escape(it->get<std::string>());
    }
  }
  obj.erase("stringData");
}

absl::Status AdmitSecret(const ResourceType& type, json& obj, const std::string& name) {
  std::vector<FieldError> errors;
  ValidateMetadata(obj, errors);
  if (!errors.empty()) return InvalidErrors(type, name, errors);
  if (!obj.contains("type")) obj["type"] = "Opaque";
  FoldStringData(obj);
  return absl::OkStatus();
}

absl::Status AdmitTrainJob(const ResourceType& type, json& obj, const std::string& name,
                           const ObjectLookup& lookup) {
  std::vector<FieldError> errors;
  ValidateMetadata(obj, errors);
  if (!Dns1035LabelProblem(name).empty() && name.size() <= 63) {
    errors.push_back(
        Invalid("<nil>", "object", "metadata.name must match RFC 1035 DNS label format"));
  }
  if (name.size() > 63) {
    errors.push_back(
        Invalid("<nil>", "object", "metadata.name must be no more than 63 characters"));
  }
  json& spec = obj["spec"];
  if (!spec.is_object()) spec = json::object();
  json& ref = spec["runtimeRef"];
  if (!ref.is_object()) ref = json::object();
  if (StringField(ref, "name").empty()) errors.push_back(Required("spec.runtimeRef.name"));
  if (!ref.contains("apiGroup")) ref["apiGroup"] = "trainer.kubeflow.org";
  if (!ref.contains("kind")) ref["kind"] = "ClusterTrainingRuntime";
  if (!spec.contains("managedBy")) spec["managedBy"] = "trainer.kubeflow.org/trainjob-controller";
  if (!spec.contains("suspend")) spec["suspend"] = false;
  std::string managed_by = StringField(spec, "managedBy");
  if (managed_by != "trainer.kubeflow.org/trainjob-controller" &&
      managed_by != "kueue.x-k8s.io/multikueue") {
    errors.push_back(Invalid("spec.managedBy", managed_by,
                             "ManagedBy must be trainer.kubeflow.org/trainjob-controller or "
                             "kueue.x-k8s.io/multikueue if set"));
  }
  if (!errors.empty()) return InvalidErrors(type, name, errors);
  obj.erase("status");
  // Trainer's validating webhook: the runtime must exist and be of a supported kind.
  std::string kind = StringField(ref, "kind");
  std::string group = StringField(ref, "apiGroup");
  std::string denied;
  if (group != "trainer.kubeflow.org" ||
      (kind != "ClusterTrainingRuntime" && kind != "TrainingRuntime")) {
    denied = absl::StrCat("unsupported runtime: ", kind, ".", group);
  } else {
    bool cluster = kind == "ClusterTrainingRuntime";
    std::string runtime = StringField(ref, "name");
    std::string ns = cluster ? "" : StringField(obj["metadata"], "namespace");
    if (!lookup("trainer.kubeflow.org", cluster ? "clustertrainingruntimes" : "trainingruntimes",
                ns, runtime)) {
      denied = absl::StrCat(
          cluster ? "spec.RuntimeRef" : "spec.runtimeRef",
          ": Invalid value: \"object\": ", cluster ? "clustertrainingruntimes" : "trainingruntimes",
          ".trainer.kubeflow.org \"", runtime, "\" not found: specified ",
          cluster ? "clusterTrainingRuntime" : "trainingRuntime",
          " must be created before the TrainJob is created");
    }
  }
  if (!denied.empty()) {
    return ApiError(403, "Forbidden",
                    absl::StrCat("admission webhook \"validator.trainjob.trainer.kubeflow.org\" "
                                 "denied the request: ",
                                 denied));
  }
  return absl::OkStatus();
}

// The fields of a pod spec an update may change; everything else must stay as it was.
json MutablePodSpecView(const json& spec) {
  json view = spec;
  for (const char* list : {"containers", "initContainers"}) {
    if (!view.contains(list) || !view[list].is_array()) continue;
    for (auto& c : view[list]) {
      if (c.is_object()) c.erase("image");
    }
  }
  view.erase("activeDeadlineSeconds");
  view.erase("tolerations");
  view.erase("schedulingGates");
  view.erase("terminationGracePeriodSeconds");
  return view;
}

void Immutable(const json& old_spec, const json& new_spec, const std::string& field,
               const std::string& path, std::vector<FieldError>& errors) {
  if (Field(old_spec, field) != Field(new_spec, field)) {
    const json& v = Field(new_spec, field);
    errors.push_back(Invalid(path, v.is_primitive() ? v : json("object"), "field is immutable"));
  }
}

}  // namespace

absl::Status InvalidErrors(const ResourceType& type, const std::string& name,
                           const std::vector<FieldError>& errors) {
  std::vector<std::string> parts;
  json causes = json::array();
  for (const auto& e : errors) {
    parts.push_back(absl::StrCat(e.field, ": ", e.detail));
    causes.push_back({{"reason", e.reason}, {"message", e.detail}, {"field", e.field}});
  }
  std::string what =
      parts.size() == 1 ? parts[0] : absl::StrCat("[", absl::StrJoin(parts, ", "), "]");
  json details = {{"name", name}, {"kind", type.kind}, {"causes", causes}};
  if (!type.group.empty()) details["group"] = type.group;
  return ApiError(422, "Invalid",
                  absl::StrCat(type.GroupKind(), " ", Quote(name), " is invalid: ", what),
                  std::move(details));
}

std::string NameProblem(const ResourceType& type, const std::string& name) {
  if (type.group.empty() && type.plural == "namespaces") return Dns1123LabelProblem(name);
  if (type.group.empty() && type.plural == "services") return Dns1035LabelProblem(name);
  if (type.group == "trainer.kubeflow.org" && type.plural == "trainjobs") return "";  // CEL rule
  return Dns1123SubdomainProblem(name);
}

absl::Status AdmitCreate(const ResourceType& type, json& obj, const ObjectLookup& lookup) {
  const std::string name = obj["metadata"]["name"].get<std::string>();
  if (type.group.empty()) {
    if (type.plural == "pods") return AdmitPod(type, obj, name);
    if (type.plural == "services") return AdmitService(type, obj, name);
    if (type.plural == "secrets") return AdmitSecret(type, obj, name);
    if (type.plural == "namespaces") {
      obj["spec"] = {{"finalizers", {"kubernetes"}}};
      obj["status"] = {{"phase", "Active"}};
      obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    }
  } else if (type.group == "batch" && type.plural == "jobs") {
    return AdmitJob(type, obj, name);
  } else if (type.group == "apps" && type.plural == "statefulsets") {
    return AdmitStatefulSet(type, obj, name);
  } else if (type.group == "trainer.kubeflow.org" && type.plural == "trainjobs") {
    return AdmitTrainJob(type, obj, name, lookup);
  }
  std::vector<FieldError> errors;
  ValidateMetadata(obj, errors);
  if (!errors.empty()) return InvalidErrors(type, name, errors);
  if (type.has_status) obj.erase("status");
  return absl::OkStatus();
}

absl::Status AdmitUpdate(const ResourceType& type, const json& old, json& obj, bool status_write,
                         bool by_controller) {
  const std::string name = StringField(Field(obj, "metadata"), "name");
  if (type.group.empty() && type.plural == "secrets") FoldStringData(obj);
  std::vector<FieldError> errors;
  ValidateMetadata(obj, errors);
  const json& old_finalizers = Field(Field(old, "metadata"), "finalizers");
  const json& new_finalizers = Field(Field(obj, "metadata"), "finalizers");
  if (!Field(Field(old, "metadata"), "deletionTimestamp").is_null() && new_finalizers.is_array()) {
    std::vector<std::string> added;
    for (const auto& f : new_finalizers) {
      if (!old_finalizers.is_array() ||
          std::find(old_finalizers.begin(), old_finalizers.end(), f) == old_finalizers.end()) {
        added.push_back(f.dump());
      }
    }
    if (!added.empty()) {
      errors.push_back({"metadata.finalizers", "FieldValueForbidden",
                        absl::StrCat("Forbidden: no new finalizers can be added if the object is "
                                     "being deleted, found new finalizers []string{",
                                     absl::StrJoin(added, ", "), "}")});
    }
  }
  if (!status_write && !by_controller) {
    const json& old_spec = Field(old, "spec");
    const json& new_spec = Field(obj, "spec");
    if (type.group.empty() && type.plural == "pods") {
      if (MutablePodSpecView(old_spec) != MutablePodSpecView(new_spec)) {
        errors.push_back({"spec", "FieldValueForbidden",
                          "Forbidden: pod updates may not change fields other than "
                          "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                          "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                          "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it "
                          "to be set to 1 if it was previously negative)"});
      }
      const json& old_gates = Field(old_spec, "schedulingGates");
      const json& new_gates = Field(new_spec, "schedulingGates");
      if (!new_gates.is_null() && !new_gates.empty() && new_gates != old_gates &&
          (old_gates.is_null() || new_gates.size() >= old_gates.size())) {
        errors.push_back({"spec.schedulingGates", "FieldValueForbidden",
                          "Forbidden: only deletion is allowed, but found new scheduling gate"});
      }
      if (!Field(old_spec, "nodeName").is_null() &&
          Field(old_spec, "nodeName") != Field(new_spec, "nodeName")) {
        errors.push_back(
            Invalid("spec.nodeName", Field(new_spec, "nodeName"), "field is immutable"));
      }
    } else if (type.group == "batch" && type.plural == "jobs") {
      ValidatePodSpec(Field(Field(new_spec, "template"), "spec"), "spec.template.spec", true,
                      errors);
      Immutable(old_spec, new_spec, "template", "spec.template", errors);
      Immutable(old_spec, new_spec, "completionMode", "spec.completionMode", errors);
      Immutable(old_spec, new_spec, "selector", "spec.selector", errors);
      if (Field(old_spec, "completions") != Field(new_spec, "completions") &&
          !(StringField(new_spec, "completionMode") == "Indexed" &&
            Field(new_spec, "completions") == Field(new_spec, "parallelism"))) {
        Immutable(old_spec, new_spec, "completions", "spec.completions", errors);
      }
      for (const char* f : {"parallelism", "completions", "backoffLimit"}) {
        ValidateNonNegative(new_spec, f, "spec", errors);
      }
    } else if (type.group == "apps" && type.plural == "statefulsets") {
      DefaultStatefulSet(obj);
      const json& spec = obj["spec"];
      ValidateStatefulSetSpec(spec, errors);
      json old_view = old_spec.is_object() ? old_spec : json::object();
      json new_view = spec.is_object() ? spec : json::object();
      for (const char* f : {"replicas", "ordinals", "template", "updateStrategy",
                            "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}) {
        old_view.erase(f);
        new_view.erase(f);
      }
      if (old_view != new_view) {
        errors.push_back({"spec", "FieldValueForbidden",
                          "Forbidden: updates to statefulset spec for fields other than "
                          "'replicas', 'ordinals', 'template', 'updateStrategy', "
                          "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                          "forbidden"});
      }
    } else if (type.group == "trainer.kubeflow.org" && type.plural == "trainjobs") {
      for (const char* f :
           {"runtimeRef", "initializer", "trainer", "managedBy", "activeDeadlineSeconds"}) {
        Immutable(old_spec, new_spec, f, absl::StrCat("spec.", f), errors);
      }
    }
  }
  if (status_write && type.group.empty() && type.plural == "pods") {
    std::string old_phase = StringField(Field(old, "status"), "phase");
    std::string new_phase = StringField(Field(obj, "status"), "phase");
    if (IsTerminal(old_phase) && new_phase != old_phase) {
      errors.push_back(Invalid("status.phase", new_phase,
                               absl::StrCat("cannot transition from terminal phase ", old_phase)));
    }
  }
  if (!errors.empty()) return InvalidErrors(type, name, errors);
  return absl::OkStatus();
}

}  // namespace submarine::testing::fake_kube
