#pragma once
// The kinds the fake API server serves and their discovery documents (/api, /api/v1, /apis,
// /apis/{group}, /apis/{group}/{version}, and the aggregated discovery v2 lists).

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

namespace submarine::testing::fake_kube {

struct ResourceType {
  std::string group;  // "" for the core group
  std::string version;
  std::string plural;  // "jobs"
  std::string singular;
  std::string kind;  // "Job"
  bool namespaced = true;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  bool has_status = false;  // a /status subresource
  bool has_log = false;     // pods/log
  bool has_scale = false;   // a /scale subresource (autoscaling/v1 Scale)
  // A custom resource (CRD): no strategic merge patch, resourceVersion required on PUT,
  // metadata.generation on every object.
  bool custom = false;
  // Whether objects carry metadata.generation (bumped on changes outside metadata and status).
  bool has_generation = false;

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "jobs.batch", "pods": how error messages name the resource.
  std::string GroupResource() const { return group.empty() ? plural : plural + "." + group; }
  // "Job.batch", "Pod": how Invalid errors name the kind.
  std::string GroupKind() const { return group.empty() ? kind : kind + "." + group; }
  std::string ListKind() const { return kind + "List"; }
  std::vector<std::string> Verbs() const;
};

class ResourceCatalog {
 public:
  // The core and batch kinds always; Trainer, Kueue and resource metrics (metrics.k8s.io
  // pods and nodes, read-only: the API handler serves them from the MetricsServer, never the
  // store) when asked for.
  ResourceCatalog(bool serve_trainer, bool serve_kueue, bool serve_metrics = false);

  // The type served at group/version/plural, or nullptr.
  const ResourceType* Find(const std::string& group, const std::string& version,
                           const std::string& plural) const;
  // The type of `kind` in `api_version` ("batch/v1", "v1"), or nullptr.
  const ResourceType* FindKind(const std::string& api_version, const std::string& kind) const;
  // Types by index (stable): the store keeps one table per index.
  const std::vector<ResourceType>& types() const { return types_; }
  int IndexOf(const ResourceType& type) const { return static_cast<int>(&type - types_.data()); }
  bool ServesGroupVersion(const std::string& group, const std::string& version) const;
  bool ServesGroup(const std::string& group) const;

  // Discovery documents, as kube-apiserver renders them.
  nlohmann::json ApiVersions(const std::string& server_address) const;  // /api
  nlohmann::json ApiGroupList() const;                                  // /apis
  nlohmann::json ApiGroup(const std::string& group) const;              // /apis/{group}
  nlohmann::json ApiResourceList(const std::string& group, const std::string& version) const;
  // Aggregated discovery (apidiscovery.k8s.io/v2 APIGroupDiscoveryList) for /api (core only)
  // or /apis (every named group).
  nlohmann::json AggregatedDiscovery(bool core) const;

 private:
  // Groups in the order they are served, each with its versions.
  std::vector<std::pair<std::string, std::vector<std::string>>> GroupVersions() const;

  std::vector<ResourceType> types_;
  std::map<std::tuple<std::string, std::string, std::string>, int> by_path_;
};

}  // namespace submarine::testing::fake_kube
