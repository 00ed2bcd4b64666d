#pragma once
// ClusterDirectory: the compute clusters experiments may run on, as the environment service's
// computeClusters/* records say (docs/design/compute-clusters.md). It keeps a copy of every
// record, builds a backend for each kubernetes or yarn record (a kubeconfig comes from the
// platform credential the record names, read from the permission service as this service), and
// registers it in compute::Clusters under the cluster's id, where the controller finds it.
//
// Records are re-read every `interval` on every replica, and at once when an experiment names a
// cluster this replica does not know yet (so one created a moment ago is usable at once). A
// changed connection builds a new backend that replaces the old one for everything after; a
// deleted record makes the cluster refuse new experiments, while its backend keeps observing
// the workloads left on it (backends are never destroyed before the directory).
//
// Clusters of the service's own configuration (local, kubernetes[], yarn[]) are "static": their
// backends come from the configuration; a record of the same name only adds its policy
// (allowed_projects, capacity). Without an environment service every cluster is static.
//
// Thread-safe. A BackgroundTask: register it with the runner for the periodic re-read.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/compute/clusters.h"
#include "common/kube/client.h"
#include "common/rpc/server_runner.h"
#include "submarine/environment/v1/compute_cluster.grpc.pb.h"
#include "submarine/permission/v1/permission.grpc.pb.h"

namespace submarine::experiment {

// Backends from connections, shared by the records and the service's configuration.
absl::StatusOr<std::unique_ptr<compute::Backend>> MakeKubernetesBackend(
    kube::ClusterConfig cluster, const environment::v1::KubernetesConnection& connection,
    const std::string& logs_dir);
absl::StatusOr<std::unique_ptr<compute::Backend>> MakeYarnBackend(
    const environment::v1::YarnConnection& connection, const std::string& logs_dir,
    const std::string& field);

class ClusterDirectory final : public rpc::BackgroundTask {
 public:
  struct Options {
    std::string environment_address;  // "" = no records: only the static clusters
    std::string permission_address;   // platform credentials; "" = none can be read
    std::string state_dir;            // per-cluster logs under <state_dir>/<id>/logs
    std::chrono::milliseconds interval{std::chrono::seconds(5)};
    std::chrono::milliseconds timeout{std::chrono::seconds(5)};
    // Called for every backend built from a record (e.g. to wake the control loop on changes).
    std::function<void(compute::Backend*)> on_backend;
  };

  // `clusters` (holding the static clusters already) must outlive the directory.
  ClusterDirectory(compute::Clusters* clusters, Options options);
  ~ClusterDirectory() override;

  // Re-reads every record now and brings the backends in line. UNAVAILABLE when the
  // environment service does not answer (nothing changes then).
  absl::Status Sync();

  // The clusters a new experiment may name (static ones and records), re-read first when
  // `wanted` (a cluster id) is not among them.
  std::vector<std::string> NamesFor(const std::string& wanted);

  // May a new experiment of `project` (an id) asking for `total` (every replica) run on cluster
  // `id`? INVALID_ARGUMENT naming `field` when the project is not allowed or the job exceeds
  // the capacity; FAILED_PRECONDITION when the cluster's backend could not be built (why).
  absl::Status CheckUse(const std::string& project, const std::string& id,
                        const compute::Resources& total, const std::string& field);

  // The capacity of cluster `id`, when its record sets one.
  std::optional<compute::Resources> Capacity(const std::string& id);

  std::string TaskName() const override { return "cluster-directory"; }
  absl::Status Start() override;
  void Stop() override;

 private:
  struct Entry {
    environment::v1::ComputeCluster record;
    std::string connection;  // the serialized connection the backend was built from
    std::string error;       // why no backend could be built from it ("" = fine)
    std::optional<compute::Resources> capacity;
  };
  // Builds the backend of a kubernetes or yarn record.
  absl::StatusOr<std::unique_ptr<compute::Backend>> Build(
      const environment::v1::ComputeCluster& record);
  absl::StatusOr<std::string> PlatformSecret(const std::string& name);
  void Run();

  compute::Clusters* clusters_;
  Options options_;
  std::set<std::string> static_;  // names registered before the directory
  std::unique_ptr<environment::v1::ComputeClusterService::Stub> records_;
  std::unique_ptr<permission::v1::CredentialService::Stub> credentials_;

  absl::Mutex sync_mu_;  // one Sync at a time (backends are built under it)
  absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<compute::Backend>> owned_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace submarine::experiment
