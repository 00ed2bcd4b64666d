#include "services/experiment/cluster_directory.h"

#include <grpcpp/grpcpp.h>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/api/names.h"
#include "common/auth/principal.h"
#include "common/compute/kubernetes_backend.h"
#include "common/compute/quantity.h"
#include "common/compute/yarn_backend.h"
#include "common/log/log.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"

namespace submarine::experiment {
namespace {

using environment::v1::ComputeCluster;

constexpr char kService[] = "experiment";

std::string ConnectionOf(const ComputeCluster& c) {
  switch (c.connection_case()) {
    case ComputeCluster::kKubernetes:
      return absl::StrCat("k8s:", c.kubernetes().SerializeAsString());
    case ComputeCluster::kYarn:
      return absl::StrCat("yarn:", c.yarn().SerializeAsString());
    default:
      return "local";
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<compute::Backend>> MakeKubernetesBackend(
    kube::ClusterConfig cluster, const environment::v1::KubernetesConnection& k,
    const std::string& logs_dir) {
  compute::KubernetesBackend::Options options;
  options.cluster = std::move(cluster);
  options.namespace_ = k.namespace_();
  options.default_image = k.default_image();
  options.logs_dir = logs_dir;
  options.use_trainer = !k.indexed_jobs_only();
  options.kueue_queue = k.kueue_queue();
  SUBMARINE_ASSIGN_OR_RETURN(auto backend, compute::KubernetesBackend::Create(std::move(options)));
  return std::unique_ptr<compute::Backend>(std::move(backend));
}

absl::StatusOr<std::unique_ptr<compute::Backend>> MakeYarnBackend(
    const environment::v1::YarnConnection& y, const std::string& logs_dir,
    const std::string& field) {
  compute::YarnBackend::Options options;
  options.rm_url = y.rm_url();
  options.user = y.user();
  options.queue = y.queue();
  options.logs_dir = logs_dir;
  for (const auto& [key, value] : {std::pair{"rm_url", options.rm_url},
                                   {"user", options.user},
                                   {"logs_dir", options.logs_dir}}) {
    if (value.empty()) return InvalidField(absl::StrCat(field, ".", key), "is required");
  }
  if (!y.registry_domain().empty()) options.registry_domain = y.registry_domain();
  if (!y.nodemanager_url().empty()) options.nodemanager_url = y.nodemanager_url();
  options.default_image = y.default_image();
  if (y.default_memory_mb() > 0) options.default_memory_mb = y.default_memory_mb();
  SUBMARINE_ASSIGN_OR_RETURN(auto backend, compute::YarnBackend::Create(std::move(options)));
  return std::unique_ptr<compute::Backend>(std::move(backend));
}

ClusterDirectory::ClusterDirectory(compute::Clusters* clusters, Options options)
    : clusters_(clusters), options_(std::move(options)) {
  for (const auto& name : clusters_->Names()) static_.insert(name);
  if (!options_.environment_address.empty()) {
    records_ = environment::v1::ComputeClusterService::NewStub(
        rpc::MakeChannel(options_.environment_address));
  }
  if (!options_.permission_address.empty()) {
    credentials_ =
        permission::v1::CredentialService::NewStub(rpc::MakeChannel(options_.permission_address));
  }
}

ClusterDirectory::~ClusterDirectory() { Stop(); }

absl::StatusOr<std::string> ClusterDirectory::PlatformSecret(const std::string& name) {
  if (credentials_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", name, ": this service runs without the permission service"));
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  rpc::ActAs(&ctx, auth::ServicePrincipal(kService));
  permission::v1::AccessCredentialSecretRequest req;
  req.set_name(name);
  permission::v1::AccessCredentialSecretResponse resp;
  grpc::Status st = credentials_->AccessCredentialSecret(&ctx, req, &resp);
  if (!st.ok()) {
    return absl::Status(FromGrpcStatus(st).code(),
                        absl::StrCat("cannot read ", name, ": ", st.error_message()));
  }
  return resp.secret();
}

absl::StatusOr<std::unique_ptr<compute::Backend>> ClusterDirectory::Build(
    const ComputeCluster& record) {
  std::string id = record.name().substr(record.name().find('/') + 1);
  const std::string logs_dir = absl::StrCat(options_.state_dir, "/", id, "/logs");
  if (record.has_kubernetes()) {
    const auto& k = record.kubernetes();
    kube::ClusterConfig cluster;
    if (k.kubeconfig_credential().empty()) {
      SUBMARINE_ASSIGN_OR_RETURN(cluster, kube::InClusterConfig());
    } else {
      SUBMARINE_ASSIGN_OR_RETURN(std::string text, PlatformSecret(k.kubeconfig_credential()));
      SUBMARINE_ASSIGN_OR_RETURN(
          cluster, kube::ParseKubeconfig(text, k.context(), "", k.kubeconfig_credential()));
    }
    return MakeKubernetesBackend(std::move(cluster), k, logs_dir);
  }
  if (record.has_yarn()) return MakeYarnBackend(record.yarn(), logs_dir, "yarn");
  return absl::FailedPreconditionError("only the built-in cluster runs on this host");
}

absl::Status ClusterDirectory::Sync() {
  if (records_ == nullptr) return absl::OkStatus();
  absl::MutexLock sync(&sync_mu_);
  std::vector<ComputeCluster> records;
  environment::v1::ListComputeClustersRequest req;
  req.set_page_size(1000);
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.timeout);
    rpc::ActAs(&ctx, auth::ServicePrincipal(kService));
    environment::v1::ListComputeClustersResponse resp;
    grpc::Status st = records_->ListComputeClusters(&ctx, req, &resp);
    if (!st.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot list the compute clusters: ", st.error_message()));
    }
    for (auto& c : *resp.mutable_compute_clusters()) records.push_back(std::move(c));
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());

  std::map<std::string, Entry> next;
  std::map<std::string, Entry> previous;
  {
    absl::MutexLock lock(&mu_);
    previous = entries_;
  }
  for (auto& record : records) {
    const std::string id = record.name().substr(record.name().find('/') + 1);
    Entry entry;
    entry.connection = ConnectionOf(record);
    if (!record.capacity().empty()) {
      auto capacity = compute::ParseResources(record.capacity(), "capacity");
      if (capacity.ok()) entry.capacity = *capacity;
    }
    entry.record = std::move(record);
    auto old = previous.find(id);
    const bool same = old != previous.end() && old->second.connection == entry.connection &&
                      old->second.error.empty();
    if (static_.count(id)) {
      // Its backend comes from the configuration; the record adds its policy only.
    } else if (same) {
      entry.error = old->second.error;
    } else {
      auto built = Build(entry.record);
      if (!built.ok()) {
        entry.error = Message(built.status());
        log::Get("clusters")->warn("compute cluster {} cannot be used: {}", id, entry.error);
      } else {
        compute::Backend* backend = built->get();
        {
          absl::MutexLock lock(&mu_);
          owned_.push_back(std::move(*built));
        }
        clusters_->Add(id, backend);
        if (options_.on_backend) options_.on_backend(backend);
        log::Get("clusters")->info("compute cluster {} ({}) is ready", id, entry.record.kind());
      }
    }
    next[id] = std::move(entry);
  }
  absl::MutexLock lock(&mu_);
  entries_ = std::move(next);
  return absl::OkStatus();
}

std::vector<std::string> ClusterDirectory::NamesFor(const std::string& wanted) {
  auto names = [&] {
    std::set<std::string> all(static_.begin(), static_.end());
    absl::MutexLock lock(&mu_);
    for (const auto& [id, entry] : entries_) all.insert(id);
    return std::vector<std::string>(all.begin(), all.end());
  };
  std::vector<std::string> known = names();
  if (absl::c_linear_search(known, wanted)) return known;
  if (absl::Status st = Sync(); !st.ok()) {
    log::Get("clusters")->warn("{}", Message(st));
    return known;
  }
  return names();
}

absl::Status ClusterDirectory::CheckUse(const std::string& project, const std::string& id,
                                        const compute::Resources& total, const std::string& field) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return absl::OkStatus();  // a static cluster without a record
  const Entry& e = it->second;
  const auto& allowed = e.record.allowed_projects();
  if (!allowed.empty() && !absl::c_linear_search(allowed, absl::StrCat("projects/", project))) {
    return InvalidField(field,
                        absl::StrCat("projects/", project, " may not run on ", e.record.name(),
                                     " (it allows ", absl::StrJoin(allowed, ", "), ")"));
  }
  if (e.capacity) {
    const compute::Resources& c = *e.capacity;
    auto over = [&](int64_t need, int64_t has) { return has > 0 && need > has; };
    if (over(total.cpu_millis, c.cpu_millis) || over(total.memory_bytes, c.memory_bytes) ||
        over(total.gpus, c.gpus)) {
      return InvalidField(
          field, absl::StrCat("the experiment needs ", compute::FormatResources(total),
                              " in total, more than the capacity of ", e.record.name(), " (",
                              e.record.capacity(), ")"));
    }
  }
  if (!e.error.empty() && !static_.count(id)) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "CLUSTER_UNAVAILABLE",
                     absl::StrCat(e.record.name(), " cannot be used: ", e.error),
                     {{"resource", e.record.name()}});
  }
  return absl::OkStatus();
}

std::optional<compute::Resources> ClusterDirectory::Capacity(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.capacity;
}

absl::Status ClusterDirectory::Start() {
  if (records_ == nullptr) return absl::OkStatus();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void ClusterDirectory::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ClusterDirectory::Run() {
  while (true) {
    if (absl::Status st = Sync(); !st.ok()) log::Get("clusters")->warn("{}", Message(st));
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(options_.interval))) {
      return;
    }
  }
}

}  // namespace submarine::experiment
