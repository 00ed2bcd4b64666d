#pragma once
// `submarine cluster list|get|create|update|delete`: compute clusters (ComputeClusterService,
// /v1/computeClusters) through the gateway. `create --kubeconfig FILE` first stores the file as
// the platform credential "platform/credentials/<cluster>-kubeconfig", so a kubeconfig never
// travels or rests in plain text beside the cluster.

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "clients/cli/permission_commands.h"

namespace submarine::cli {

// "gpu-a" -> "computeClusters/gpu-a"; a full name is returned unchanged.
std::string ClusterResource(const std::string& name_or_id);

struct ClusterInput {
  std::string file;  // a YAML/JSON ComputeCluster ("-": standard input); flags override it
  // Kubernetes: --kubeconfig FILE (stored as a platform credential) or --kubeconfig-credential.
  bool kubernetes = false;
  std::string kubeconfig;
  std::string kubeconfig_credential;
  std::string context;
  std::string namespace_;
  std::string default_image;
  std::string kueue_queue;
  bool indexed_jobs_only = false;
  // YARN.
  bool yarn = false;
  std::string rm_url;
  std::string yarn_user;
  std::string queue;
  // Either kind.
  std::optional<std::string> capacity;
  std::optional<std::vector<std::string>> allowed_projects;  // ids or projects/{p}
  std::optional<std::string> display_name;
  std::optional<std::string> description;
};

absl::Status ListClusters(const ClientContext& ctx, const std::string& filter);
absl::Status GetCluster(const ClientContext& ctx, const std::string& name);
absl::Status CreateCluster(const ClientContext& ctx, const std::string& id,
                           const ClusterInput& input);
// Updates what `input` sets (capacity, allowed projects, display name, description).
absl::Status UpdateCluster(const ClientContext& ctx, const std::string& name,
                           const ClusterInput& input);
absl::Status DeleteCluster(const ClientContext& ctx, const std::string& name);

}  // namespace submarine::cli
