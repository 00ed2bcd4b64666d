#include "clients/cli/cluster_commands.h"

#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config/config.h"
#include "common/status/status.h"
#include "submarine/environment/v1/compute_cluster.pb.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::cli {
namespace {

namespace env = submarine::environment::v1;

std::string ClusterRpc(const char* method) {
  return absl::StrCat("submarine.environment.v1.ComputeClusterService.", method);
}

std::string ProjectsText(const env::ComputeCluster& c) {
  if (c.allowed_projects().empty()) return "(all)";
  std::vector<std::string> ids;
  for (const auto& p : c.allowed_projects()) ids.push_back(LastSegmentOf(p));
  return absl::StrJoin(ids, ",");
}

std::string WhereText(const env::ComputeCluster& c) {
  if (c.has_kubernetes()) {
    const auto& k = c.kubernetes();
    std::string where =
        k.kubeconfig_credential().empty() ? "in-cluster" : k.kubeconfig_credential();
    if (!k.namespace_().empty()) absl::StrAppend(&where, " ns=", k.namespace_());
    return where;
  }
  if (c.has_yarn()) return c.yarn().rm_url();
  return "this host";
}

const std::vector<Column<env::ComputeCluster>>& ClusterColumns() {
  static const auto* columns = new std::vector<Column<env::ComputeCluster>>{
      {"NAME", [](const env::ComputeCluster& c) { return LastSegmentOf(c.name()); }},
      {"KIND", [](const env::ComputeCluster& c) { return c.kind(); }},
      {"CONNECTION", WhereText},
      {"CAPACITY", [](const env::ComputeCluster& c) { return c.capacity(); }},
      {"PROJECTS", ProjectsText},
      {"CREATED", [](const env::ComputeCluster& c) { return TimeText(c.create_time()); }}};
  return *columns;
}

void Print(const ClientContext& ctx, const std::vector<env::ComputeCluster>& items, bool single) {
  *ctx.out << FormatMessages(items, ClusterColumns(), ctx.format, single);
}

std::string ProjectResourceOf(const std::string& id) {
  return id.rfind("projects/", 0) == 0 ? id : absl::StrCat("projects/", id);
}

absl::StatusOr<std::string> ReadText(const ClientContext& ctx, const std::string& file) {
  if (file != "-") return config::ReadFile(file);
  std::stringstream ss;
  ss << ctx.in->rdbuf();
  return ss.str();
}

// The fields of `input` other than the connection onto `c`; their paths into `mask` when given.
void ApplyCommon(const ClusterInput& input, env::ComputeCluster* c,
                 google::protobuf::FieldMask* mask) {
  auto changed = [mask](const char* path) {
    if (mask != nullptr) mask->add_paths(path);
  };
  if (input.capacity) {
    c->set_capacity(*input.capacity);
    changed("capacity");
  }
  if (input.allowed_projects) {
    c->clear_allowed_projects();
    for (const auto& p : *input.allowed_projects) c->add_allowed_projects(ProjectResourceOf(p));
    changed("allowed_projects");
  }
  if (input.display_name) {
    c->set_display_name(*input.display_name);
    changed("display_name");
  }
  if (input.description) {
    c->set_description(*input.description);
    changed("description");
  }
}

}  // namespace

std::string ClusterResource(const std::string& name_or_id) {
  if (name_or_id.rfind("computeClusters/", 0) == 0) return name_or_id;
  return absl::StrCat("computeClusters/", name_or_id);
}

absl::Status ListClusters(const ClientContext& ctx, const std::string& filter) {
  env::ListComputeClustersRequest request;
  request.set_filter(filter);
  request.set_page_size(1000);
  std::vector<env::ComputeCluster> all;
  do {
    SUBMARINE_ASSIGN_OR_RETURN(auto page, ctx.api->Call<env::ListComputeClustersResponse>(
                                              ClusterRpc("ListComputeClusters"), request));
    for (auto& c : *page.mutable_compute_clusters()) all.push_back(std::move(c));
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  Print(ctx, all, false);
  return absl::OkStatus();
}

absl::Status GetCluster(const ClientContext& ctx, const std::string& name) {
  env::GetComputeClusterRequest request;
  request.set_name(ClusterResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(
      auto cluster, ctx.api->Call<env::ComputeCluster>(ClusterRpc("GetComputeCluster"), request));
  Print(ctx, {cluster}, true);
  return absl::OkStatus();
}

absl::Status CreateCluster(const ClientContext& ctx, const std::string& id,
                           const ClusterInput& input) {
  env::CreateComputeClusterRequest request;
  request.set_compute_cluster_id(id);
  env::ComputeCluster* c = request.mutable_compute_cluster();
  if (!input.file.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string text, ReadText(ctx, input.file));
    SUBMARINE_ASSIGN_OR_RETURN(std::string json, config::YamlToJson(text));
    auto parsed = google::protobuf::util::JsonStringToMessage(json, c);
    if (!parsed.ok()) {
      return InvalidField("file",
                          absl::StrCat("not a compute cluster: ", parsed.message().as_string()));
    }
    c->clear_name();
  }
  if (input.kubernetes && input.yarn) {
    return InvalidField("kind", "choose one of --kubernetes and --yarn");
  }
  if (input.kubernetes) {
    if (!input.kubeconfig.empty() && !input.kubeconfig_credential.empty()) {
      return InvalidField("kubeconfig", "give --kubeconfig or --kubeconfig-credential, not both");
    }
    auto* k = c->mutable_kubernetes();
    k->set_kubeconfig_credential(input.kubeconfig_credential);
    k->set_context(input.context);
    k->set_namespace_(input.namespace_);
    k->set_default_image(input.default_image);
    k->set_kueue_queue(input.kueue_queue);
    k->set_indexed_jobs_only(input.indexed_jobs_only);
    if (!input.kubeconfig.empty()) {
      // Stored first as a platform credential; the cluster only names it.
      SUBMARINE_ASSIGN_OR_RETURN(std::string kubeconfig, ReadText(ctx, input.kubeconfig));
      if (kubeconfig.empty()) return InvalidField("kubeconfig", "the file is empty");
      permission::v1::CreateCredentialRequest store;
      store.set_parent("platform");
      store.set_credential_id(absl::StrCat(id, "-kubeconfig"));
      store.mutable_credential()->set_type("kubeconfig");
      store.mutable_credential()->set_description(
          absl::StrCat("kubeconfig of computeClusters/", id));
      store.set_secret(kubeconfig);
      SUBMARINE_ASSIGN_OR_RETURN(
          auto credential,
          ctx.api->Call<permission::v1::Credential>(
              "submarine.permission.v1.CredentialService.CreateCredential", store));
      k->set_kubeconfig_credential(credential.name());
    }
  } else if (input.yarn) {
    auto* y = c->mutable_yarn();
    y->set_rm_url(input.rm_url);
    y->set_user(input.yarn_user);
    y->set_queue(input.queue);
    y->set_default_image(input.default_image);
  } else if (input.file.empty()) {
    return InvalidField("kind", "give --kubernetes or --yarn (or a file with -f)");
  }
  ApplyCommon(input, c, nullptr);
  SUBMARINE_ASSIGN_OR_RETURN(auto created, ctx.api->Call<env::ComputeCluster>(
                                               ClusterRpc("CreateComputeCluster"), request));
  Print(ctx, {created}, true);
  return absl::OkStatus();
}

absl::Status UpdateCluster(const ClientContext& ctx, const std::string& name,
                           const ClusterInput& input) {
  env::UpdateComputeClusterRequest request;
  request.mutable_compute_cluster()->set_name(ClusterResource(name));
  ApplyCommon(input, request.mutable_compute_cluster(), request.mutable_update_mask());
  if (request.update_mask().paths().empty()) {
    return InvalidField("update",
                        "nothing to update: give --capacity, --allow-project, "
                        "--display-name or --description");
  }
  SUBMARINE_ASSIGN_OR_RETURN(auto updated, ctx.api->Call<env::ComputeCluster>(
                                               ClusterRpc("UpdateComputeCluster"), request));
  Print(ctx, {updated}, true);
  return absl::OkStatus();
}

absl::Status DeleteCluster(const ClientContext& ctx, const std::string& name) {
  env::DeleteComputeClusterRequest request;
  request.set_name(ClusterResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(auto answer, ctx.api->Call<env::DeleteComputeClusterResponse>(
                                              ClusterRpc("DeleteComputeCluster"), request));
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Deleted " << request.name() << "\n";
  } else {
    Print(ctx, {answer.compute_cluster()}, true);
  }
  return absl::OkStatus();
}

}  // namespace submarine::cli
