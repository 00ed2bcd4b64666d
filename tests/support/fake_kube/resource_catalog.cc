#include "tests/support/fake_kube/resource_catalog.h"

#include <algorithm>

namespace submarine::testing::fake_kube {

std::vector<std::string> ResourceType::Verbs() const {
  if (group == "metrics.k8s.io") return {"get", "list"};
  if (plural == "namespaces")
    return {"create", "delete", "get", "list", "patch", "update", "watch"};
  return {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
}

ResourceCatalog::ResourceCatalog(bool serve_trainer, bool serve_kueue, bool serve_metrics) {
  auto add = [this](ResourceType type) { types_.push_back(std::move(type)); };
  // Core v1.
  add({.group = "",
       .version = "v1",
       .plural = "pods",
       .singular = "pod",
       .kind = "Pod",
       .short_names = {"po"},
       .categories = {"all"},
       .has_status = true,
       .has_log = true});
  add({.group = "",
       .version = "v1",
       .plural = "services",
       .singular = "service",
       .kind = "Service",
       .short_names = {"svc"},
       .categories = {"all"},
       .has_status = true});
  add({.group = "",
       .version = "v1",
       .plural = "namespaces",
       .singular = "namespace",
       .kind = "Namespace",
       .namespaced = false,
       .short_names = {"ns"},
       .has_status = true});
  add({.group = "",
       .version = "v1",
       .plural = "events",
       .singular = "event",
       .kind = "Event",
       .short_names = {"ev"}});
  add({.group = "", .version = "v1", .plural = "secrets", .singular = "secret", .kind = "Secret"});
  add({.group = "",
       .version = "v1",
       .plural = "configmaps",
       .singular = "configmap",
       .kind = "ConfigMap",
       .short_names = {"cm"}});
  // apps/v1.
  add({.group = "apps",
       .version = "v1",
       .plural = "statefulsets",
       .singular = "statefulset",
       .kind = "StatefulSet",
       .short_names = {"sts"},
       .categories = {"all"},
       .has_status = true,
       .has_scale = true,
       .has_generation = true});
  // batch/v1.
  add({.group = "batch",
       .version = "v1",
       .plural = "jobs",
       .singular = "job",
       .kind = "Job",
       .categories = {"all"},
       .has_status = true,
       .has_generation = true});
  if (serve_trainer) {
    const std::string g = "trainer.kubeflow.org";
    add({.group = g,
         .version = "v1alpha1",
         .plural = "trainjobs",
         .singular = "trainjob",
         .kind = "TrainJob",
         .has_status = true,
         .custom = true,
         .has_generation = true});
    add({.group = g,
         .version = "v1alpha1",
         .plural = "clustertrainingruntimes",
         .singular = "clustertrainingruntime",
         .kind = "ClusterTrainingRuntime",
         .namespaced = false,
         .custom = true,
         .has_generation = true});
    add({.group = g,
         .version = "v1alpha1",
         .plural = "trainingruntimes",
         .singular = "trainingruntime",
         .kind = "TrainingRuntime",
         .custom = true,
         .has_generation = true});
  }
  if (serve_kueue) {
    const std::string g = "kueue.x-k8s.io";
    add({.group = g,
         .version = "v1beta2",
         .plural = "workloads",
         .singular = "workload",
         .kind = "Workload",
         .short_names = {"wl"},
         .has_status = true,
         .custom = true,
         .has_generation = true});
    add({.group = g,
         .version = "v1beta2",
         .plural = "localqueues",
         .singular = "localqueue",
         .kind = "LocalQueue",
         .short_names = {"queue", "queues", "lq"},
         .has_status = true,
         .custom = true,
         .has_generation = true});
    add({.group = g,
         .version = "v1beta2",
         .plural = "clusterqueues",
         .singular = "clusterqueue",
         .kind = "ClusterQueue",
         .namespaced = false,
         .short_names = {"cq"},
         .has_status = true,
         .custom = true,
         .has_generation = true});
  }
  if (serve_metrics) {
    const std::string g = "metrics.k8s.io";
    add({.group = g, .version = "v1beta1", .plural = "pods", .singular = "", .kind = "PodMetrics"});
    add({.group = g,
         .version = "v1beta1",
         .plural = "nodes",
         .singular = "",
         .kind = "NodeMetrics",
         .namespaced = false});
  }
  for (size_t i = 0; i < types_.size(); ++i) {
    const auto& t = types_[i];
    by_path_[{t.group, t.version, t.plural}] = static_cast<int>(i);
  }
}

const ResourceType* ResourceCatalog::Find(const std::string& group, const std::string& version,
                                          const std::string& plural) const {
  auto it = by_path_.find({group, version, plural});
  return it == by_path_.end() ? nullptr : &types_[it->second];
}

const ResourceType* ResourceCatalog::FindKind(const std::string& api_version,
                                              const std::string& kind) const {
  for (const auto& t : types_) {
    if (t.kind == kind && t.ApiVersion() == api_version) return &t;
  }
  return nullptr;
}

bool ResourceCatalog::ServesGroupVersion(const std::string& group,
                                         const std::string& version) const {
  return std::any_of(types_.begin(), types_.end(), [&](const ResourceType& t) {
    return t.group == group && t.version == version;
  });
}

bool ResourceCatalog::ServesGroup(const std::string& group) const {
  return std::any_of(types_.begin(), types_.end(),
                     [&](const ResourceType& t) { return t.group == group; });
}

std::vector<std::pair<std::string, std::vector<std::string>>> ResourceCatalog::GroupVersions()
    const {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& t : types_) {
    if (t.group.empty()) continue;
    auto it =
        std::find_if(out.begin(), out.end(), [&](const auto& g) { return g.first == t.group; });
    if (it == out.end()) {
      out.push_back({t.group, {t.version}});
    } else if (std::find(it->second.begin(), it->second.end(), t.version) == it->second.end()) {
      it->second.push_back(t.version);
    }
  }
  return out;
}

nlohmann::json ResourceCatalog::ApiVersions(const std::string& server_address) const {
  return {{"kind", "APIVersions"},
          {"versions", {"v1"}},
          {"serverAddressByClientCIDRs",
           {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}}}};
}

namespace {

nlohmann::json GroupDocument(const std::string& group, const std::vector<std::string>& versions) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& v : versions)
    list.push_back({{"groupVersion", group + "/" + v}, {"version", v}});
  return {{"name", group},
          {"versions", list},
          {"preferredVersion",
           {{"groupVersion", group + "/" + versions.front()}, {"version", versions.front()}}}};
}

}  // namespace

nlohmann::json ResourceCatalog::ApiGroupList() const {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& [group, versions] : GroupVersions()) {
    groups.push_back(GroupDocument(group, versions));
  }
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

nlohmann::json ResourceCatalog::ApiGroup(const std::string& group) const {
  for (const auto& [name, versions] : GroupVersions()) {
    if (name != group) continue;
    auto doc = GroupDocument(name, versions);
    doc["kind"] = "APIGroup";
    doc["apiVersion"] = "v1";
    return doc;
  }
  return nullptr;
}

nlohmann::json ResourceCatalog::ApiResourceList(const std::string& group,
                                                const std::string& version) const {
  nlohmann::json resources = nlohmann::json::array();
  for (const auto& t : types_) {
    if (t.group != group || t.version != version) continue;
    nlohmann::json r = {{"name", t.plural},
                        {"singularName", t.singular},
                        {"namespaced", t.namespaced},
                        {"kind", t.kind},
                        {"verbs", t.Verbs()}};
    if (!t.short_names.empty()) r["shortNames"] = t.short_names;
    if (!t.categories.empty()) r["categories"] = t.categories;
    resources.push_back(std::move(r));
    if (t.has_status) {
      resources.push_back({{"name", t.plural + "/status"},
                           {"singularName", ""},
                           {"namespaced", t.namespaced},
                           {"kind", t.kind},
                           {"verbs", {"get", "patch", "update"}}});
    }
    if (t.has_scale) {
      resources.push_back({{"name", t.plural + "/scale"},
                           {"singularName", ""},
                           {"namespaced", t.namespaced},
                           {"group", "autoscaling"},
                           {"version", "v1"},
                           {"kind", "Scale"},
                           {"verbs", {"get", "patch", "update"}}});
    }
    if (t.has_log) {
      resources.push_back({{"name", t.plural + "/log"},
                           {"singularName", ""},
                           {"namespaced", t.namespaced},
                           {"kind", t.kind},
                           {"verbs", {"get"}}});
    }
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", group.empty() ? version : group + "/" + version},
          {"resources", resources}};
}

nlohmann::json ResourceCatalog::AggregatedDiscovery(bool core) const {
  auto versions_of = [this](const std::string& group, const std::vector<std::string>& versions) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : versions) {
      nlohmann::json resources = nlohmann::json::array();
      for (const auto& t : types_) {
        if (t.group != group || t.version != v) continue;
        nlohmann::json kind = {{"group", ""}, {"version", ""}, {"kind", t.kind}};
        nlohmann::json r = {{"resource", t.plural},
                            {"responseKind", kind},
                            {"scope", t.namespaced ? "Namespaced" : "Cluster"},
                            {"singularResource", t.singular},
                            {"verbs", t.Verbs()}};
        if (!t.short_names.empty()) r["shortNames"] = t.short_names;
        if (!t.categories.empty()) r["categories"] = t.categories;
        nlohmann::json subs = nlohmann::json::array();
        if (t.has_status) {
          subs.push_back({{"subresource", "status"},
                          {"responseKind", kind},
                          {"verbs", {"get", "patch", "update"}}});
        }
        if (t.has_scale) {
          subs.push_back(
              {{"subresource", "scale"},
               {"responseKind", {{"group", "autoscaling"}, {"version", "v1"}, {"kind", "Scale"}}},
               {"verbs", {"get", "patch", "update"}}});
        }
        if (t.has_log) {
          subs.push_back({{"subresource", "log"},
                          {"responseKind", {{"group", ""}, {"version", ""}, {"kind", "Pod"}}},
                          {"verbs", {"get"}}});
        }
        if (!subs.empty()) r["subresources"] = subs;
        resources.push_back(std::move(r));
      }
      out.push_back({{"version", v}, {"resources", resources}, {"freshness", "Current"}});
    }
    return out;
  };
  nlohmann::json items = nlohmann::json::array();
  if (core) {
    items.push_back(
        {{"metadata", {{"creationTimestamp", nullptr}}}, {"versions", versions_of("", {"v1"})}});
  } else {
    for (const auto& [group, versions] : GroupVersions()) {
      items.push_back({{"metadata", {{"name", group}, {"creationTimestamp", nullptr}}},
                       {"versions", versions_of(group, versions)}});
    }
  }
  return {{"kind", "APIGroupDiscoveryList"},
          {"apiVersion", "apidiscovery.k8s.io/v2"},
          {"metadata", nlohmann::json::object()},
          {"items", items}};
}

}  // namespace submarine::testing::fake_kube
