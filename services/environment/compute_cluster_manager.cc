#include "services/environment/compute_cluster_manager.h"

#include <google/protobuf/util/time_util.h>

#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/api/field_mask.h"
#include "common/api/filter_compiler.h"
#include "common/api/labels.h"
#include "common/api/list_request.h"
#include "common/api/names.h"
#include "common/compute/quantity.h"
#include "common/events/outbox.h"
#include "common/status/status.h"
#include "services/environment/compute_cluster_store.h"
#include "services/environment/environment_store.h"

namespace submarine::environment {
namespace {

using google::protobuf::util::TimeUtil;
using submarine::permission::v1::Permission;
using v1::ComputeCluster;

constexpr int kClusterPageSize = 50;
constexpr int kClusterMaxPageSize = 1000;
constexpr char kClusterPrefix[] = "computeClusters/";
// Every enabled user may READ every platform resource: asking about the built-in cluster tells
// whether the caller may list them.
constexpr char kListProbe[] = "computeClusters/local";

absl::Status CheckClusterWord(const std::string& value, const std::string& field, size_t max) {
  SUBMARINE_RETURN_IF_ERROR(api::CheckText(value, field, max));
  for (char c : value) {
    if (c == ' ') return InvalidField(field, "must not contain spaces");
  }
  return absl::OkStatus();
}

// A DNS-1123 label, as Kubernetes namespaces are.
absl::Status CheckDnsLabel(const std::string& value, const std::string& field) {
  bool ok =
      value.size() <= 63 && absl::ascii_isalnum(value.front()) && absl::ascii_isalnum(value.back());
  for (char c : value) ok = ok && ((c >= 'a' && c <= 'z') || absl::ascii_isdigit(c) || c == '-');
  if (!ok) {
    return InvalidField(field, absl::StrCat(api::Quoted(value),
                                            " is not a DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, "
                                            "at most 63)"));
  }
  return absl::OkStatus();
}

absl::Status CheckHttpUrl(const std::string& value, const std::string& field) {
  if (!absl::StartsWith(value, "http://") && !absl::StartsWith(value, "https://")) {
    return InvalidField(
        field, absl::StrCat("must be an http:// or https:// URL, got ", api::Quoted(value)));
  }
  return CheckClusterWord(value, field, 1024);
}

absl::Status ValidateKubernetes(const v1::KubernetesConnection& k, const std::string& prefix) {
  const std::string& credential = k.kubeconfig_credential();
  if (!credential.empty()) {
    constexpr char kCredentialPrefix[] = "platform/credentials/";
    std::string id = absl::StartsWith(credential, kCredentialPrefix)
                         ? credential.substr(strlen(kCredentialPrefix))
                         : std::string();
    bool ok = !id.empty() && id.size() <= 63 && absl::ascii_islower(id[0]);
    for (char c : id) ok = ok && (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-');
    if (!ok) {
      return InvalidField(prefix + "kubeconfig_credential",
                          absl::StrCat("expected \"platform/credentials/{id}\" (a platform "
                                       "credential; a kubeconfig never goes in plain text), got ",
                                       api::Quoted(credential)));
    }
  }
  SUBMARINE_RETURN_IF_ERROR(CheckClusterWord(k.context(), prefix + "context", 253));
  if (!k.namespace_().empty()) {
    SUBMARINE_RETURN_IF_ERROR(CheckDnsLabel(k.namespace_(), prefix + "namespace"));
  }
  SUBMARINE_RETURN_IF_ERROR(CheckClusterWord(k.default_image(), prefix + "default_image", 1024));
  if (!k.kueue_queue().empty()) {
    SUBMARINE_RETURN_IF_ERROR(CheckDnsLabel(k.kueue_queue(), prefix + "kueue_queue"));
  }
  return absl::OkStatus();
}

absl::Status ValidateYarn(const v1::YarnConnection& y, const std::string& prefix) {
  if (y.rm_url().empty()) return InvalidField(prefix + "rm_url", "is required");
  SUBMARINE_RETURN_IF_ERROR(CheckHttpUrl(y.rm_url(), prefix + "rm_url"));
  if (y.user().empty()) return InvalidField(prefix + "user", "is required");
  SUBMARINE_RETURN_IF_ERROR(api::ValidateUsername(y.user(), prefix + "user"));
  SUBMARINE_RETURN_IF_ERROR(CheckClusterWord(y.queue(), prefix + "queue", 255));
  SUBMARINE_RETURN_IF_ERROR(CheckClusterWord(y.registry_domain(), prefix + "registry_domain", 253));
  if (!y.nodemanager_url().empty()) {
    SUBMARINE_RETURN_IF_ERROR(CheckHttpUrl(y.nodemanager_url(), prefix + "nodemanager_url"));
    if (!absl::StrContains(y.nodemanager_url(), "{host}")) {
      return InvalidField(prefix + "nodemanager_url", "must contain \"{host}\"");
    }
  }
  SUBMARINE_RETURN_IF_ERROR(CheckClusterWord(y.default_image(), prefix + "default_image", 1024));
  if (y.default_memory_mb() > 1024 * 1024) {
    return InvalidField(prefix + "default_memory_mb", "more than 1 TiB");
  }
  return absl::OkStatus();
}

// Everything a caller sets, checked; `id` is the cluster's id (only "local" is of kind local).
absl::Status ValidateCluster(const ComputeCluster& c, const std::string& id,
                             const std::string& prefix) {
  SUBMARINE_RETURN_IF_ERROR(api::CheckText(c.display_name(), prefix + "display_name", 256));
  SUBMARINE_RETURN_IF_ERROR(
      api::CheckText(c.description(), prefix + "description", 4096, /*multiline=*/true));
  switch (c.connection_case()) {
    case ComputeCluster::CONNECTION_NOT_SET:
      return InvalidField(prefix + "connection",
                          "is required: set exactly one of kubernetes or yarn");
    case ComputeCluster::kLocal:
      if (id != ComputeClusterManager::kLocal) {
        return InvalidField(prefix + "local",
                            "only the built-in cluster \"computeClusters/local\" runs on the "
                            "services' own host; use kubernetes or yarn");
      }
      break;
    case ComputeCluster::kKubernetes:
      SUBMARINE_RETURN_IF_ERROR(ValidateKubernetes(c.kubernetes(), prefix + "kubernetes."));
      break;
    case ComputeCluster::kYarn:
      SUBMARINE_RETURN_IF_ERROR(ValidateYarn(c.yarn(), prefix + "yarn."));
      break;
  }
  if (!c.capacity().empty()) {
    SUBMARINE_RETURN_IF_ERROR(compute::ParseResources(c.capacity(), prefix + "capacity").status());
  }
  if (c.allowed_projects_size() > 1000) {
    return InvalidField(prefix + "allowed_projects", "more than 1000 entries");
  }
  std::set<std::string> seen;
  for (int i = 0; i < c.allowed_projects_size(); ++i) {
    std::string field = absl::StrCat(prefix, "allowed_projects[", i, "]");
    std::string project;
    SUBMARINE_RETURN_IF_ERROR(api::ParseProjectName(c.allowed_projects(i), field, &project));
    if (!seen.insert(project).second) {
      return InvalidField(field, absl::StrCat(api::Quoted(c.allowed_projects(i)), " is repeated"));
    }
  }
  return api::ValidateLabels(c.labels(), prefix + "labels");
}

absl::Status ClusterEtagMismatch(const std::string& name) {
  return MakeError(absl::StatusCode::kAborted, "ETAG_MISMATCH",
                   absl::StrCat("compute cluster \"", name,
                                "\" was changed concurrently: the etag does not match; read it "
                                "again and retry"),
                   {{"resource", name}});
}

// Applies the update to `target` (the stored cluster). The connection can be updated but not
// change kind.
absl::Status ApplyUpdate(const v1::UpdateComputeClusterRequest& req, ComputeCluster* target) {
  const ComputeCluster& src = req.compute_cluster();
  const std::string kind = ComputeClusterKind(*target);
  std::vector<std::string> implicit;
  if (!src.display_name().empty()) implicit.push_back("display_name");
  if (!src.description().empty()) implicit.push_back("description");
  if (!src.capacity().empty()) implicit.push_back("capacity");
  if (src.allowed_projects_size() > 0) implicit.push_back("allowed_projects");
  if (src.labels_size() > 0) implicit.push_back("labels");
  if (src.connection_case() != ComputeCluster::CONNECTION_NOT_SET) {
    implicit.push_back(ComputeClusterKind(src));
  }
  static const std::set<std::string> kUpdatable = {
      "display_name", "description", "capacity", "allowed_projects",
      "labels",       "kubernetes",  "yarn"};
  SUBMARINE_ASSIGN_OR_RETURN(auto paths,
                             api::UpdatePaths(req.update_mask(), kUpdatable, std::move(implicit)));
  std::vector<std::string> apply;
  const std::string other = src.connection_case() == ComputeCluster::CONNECTION_NOT_SET
                                ? std::string()
                                : ComputeClusterKind(src);
  if (!other.empty() && other != kind) {
    return InvalidField(absl::StrCat("compute_cluster.", other),
                        absl::StrCat("the cluster is of kind ", kind,
                                     "; a cluster's kind cannot change (create another one)"));
  }
  for (auto& path : paths) {
    if (path == "kubernetes" || path == "yarn") {
      // A "*" mask names both connections: only the cluster's own kind applies.
      if (path != kind) continue;
      if (other.empty()) {
        return InvalidField(absl::StrCat("compute_cluster.", path),
                            "is required when the update mask names it");
      }
    }
    apply.push_back(std::move(path));
  }
  api::ApplyPaths(apply, src, target);
  return absl::OkStatus();
}

}  // namespace

std::string ComputeClusterKind(const ComputeCluster& c) {
  switch (c.connection_case()) {
    case ComputeCluster::kLocal:
      return "local";
    case ComputeCluster::kKubernetes:
      return "kubernetes";
    case ComputeCluster::kYarn:
      return "yarn";
    default:
      return "";
  }
}

absl::Status ParseComputeClusterName(const std::string& name, const std::string& field,
                                     std::string* id) {
  if (name.empty()) return InvalidField(field, "is required (\"computeClusters/{cluster}\")");
  if (!absl::StartsWith(name, kClusterPrefix) ||
      !api::IsValidResourceId(name.substr(strlen(kClusterPrefix)))) {
    return InvalidField(
        field, absl::StrCat("expected \"computeClusters/{cluster}\", got ", api::Quoted(name)));
  }
  *id = name.substr(strlen(kClusterPrefix));
  return absl::OkStatus();
}

ComputeClusterManager::ComputeClusterManager(db::ConnectionPool* pool,
                                             authz::Authorizer* authorizer,
                                             const api::Idempotency* idempotency,
                                             const Clock& clock, IdGenerator& ids)
    : pool_(pool), authz_(authorizer), idempotency_(idempotency), clock_(clock), ids_(ids) {}

google::protobuf::Timestamp ComputeClusterManager::Now() const {
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(clock_.Now().time_since_epoch())
          .count();
  return TimeUtil::MicrosecondsToTimestamp(micros);
}

absl::StatusOr<ComputeCluster> ComputeClusterManager::Get(const std::string& name,
                                                          const rpc::CallInfo& call) {
  std::string id;
  SUBMARINE_RETURN_IF_ERROR(ParseComputeClusterName(name, "name", &id));
  SUBMARINE_RETURN_IF_ERROR(authz_->Check(call, name, Permission::READ));
  ComputeCluster out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    auto found = ComputeClusterStore::Find(tx, id, false);
    if (!found) return NotFound("compute cluster", name);
    out = std::move(found->cluster);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListComputeClustersResponse> ComputeClusterManager::List(
    const v1::ListComputeClustersRequest& req, const rpc::CallInfo& call) {
  ComputeClusterQuery q;
  SUBMARINE_ASSIGN_OR_RETURN(
      q.limit, api::EffectivePageSize(req.page_size(), kClusterPageSize, kClusterMaxPageSize));
  SUBMARINE_ASSIGN_OR_RETURN(q.filter,
                             api::CompileFilter(req.filter(), ComputeClusterStore::FilterFields()));
  uint64_t hash = api::QueryHash({"computeClusters", req.filter()});
  SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
  if (!req.page_token().empty()) {
    auto micros = TimeUtil::TimestampToMicroseconds(token.after_time());
    q.after = {std::chrono::system_clock::time_point(std::chrono::microseconds(micros)),
               token.after_id()};
  }
  SUBMARINE_RETURN_IF_ERROR(authz_->Check(call, kListProbe, Permission::READ));
  const int page = q.limit;
  q.limit = page + 1;  // one more row tells whether another page exists
  std::vector<StoredComputeCluster> rows;
  SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    rows = ComputeClusterStore::List(tx, q);
    return absl::OkStatus();
  }));
  v1::ListComputeClustersResponse resp;
  resp.set_next_page_token(api::TakePage(
      rows, page, hash,
      [&](const StoredComputeCluster& r) { *resp.add_compute_clusters() = r.cluster; },
      [](const StoredComputeCluster& r, submarine::common::v1::PageToken* next) {
        *next->mutable_after_time() = r.cluster.create_time();
        next->set_after_id(r.id);
      }));
  return resp;
}

absl::StatusOr<ComputeCluster> ComputeClusterManager::Create(
    const v1::CreateComputeClusterRequest& req, const rpc::CallInfo& call) {
  const std::string& id = req.compute_cluster_id();
  if (id.empty()) return InvalidField("compute_cluster_id", "is required");
  SUBMARINE_RETURN_IF_ERROR(api::ValidateResourceId(id, "compute_cluster_id", "compute cluster"));
  const std::string name = absl::StrCat(kClusterPrefix, id);
  const ComputeCluster& in = req.compute_cluster();
  if (!in.name().empty() && in.name() != name) {
    return InvalidField("compute_cluster.name",
                        "is output only on create (set compute_cluster_id instead)");
  }
  if (!in.kind().empty() && in.kind() != ComputeClusterKind(in)) {
    return InvalidField("compute_cluster.kind",
                        "is output only: set the connection (kubernetes or yarn) instead");
  }
  SUBMARINE_RETURN_IF_ERROR(ValidateCluster(in, id, "compute_cluster."));
  SUBMARINE_RETURN_IF_ERROR(authz_->Check(call, name, Permission::WRITE));
  return idempotency_->Run<ComputeCluster>(
      *pool_, call, "CreateComputeCluster", req, req.request_id(),
      [&](pqxx::work& tx, ComputeCluster* answer) -> absl::Status {
        ComputeCluster& out = *answer;
        if (ComputeClusterStore::Find(tx, id, false)) return AlreadyExists("compute cluster", name);
        out = in;
        out.set_name(name);
        out.set_kind(ComputeClusterKind(in));
        *out.mutable_create_time() = Now();
        *out.mutable_update_time() = out.create_time();
        out.set_etag(ids_.RandomHex(8));
        try {
          ComputeClusterStore::Insert(tx, id, out);
        } catch (const pqxx::unique_violation&) {
          return AlreadyExists("compute cluster", name);  // lost a race with a concurrent create
        }
        v1::ComputeClusterCreated event;
        *event.mutable_compute_cluster() = out;
        return events::AppendToOutbox(tx, event, name, call.request_id, call.subject);
      });
}

absl::StatusOr<ComputeCluster> ComputeClusterManager::Update(
    const v1::UpdateComputeClusterRequest& req, const rpc::CallInfo& call) {
  const std::string& name = req.compute_cluster().name();
  std::string id;
  SUBMARINE_RETURN_IF_ERROR(ParseComputeClusterName(name, "compute_cluster.name", &id));
  SUBMARINE_RETURN_IF_ERROR(authz_->Check(call, name, Permission::WRITE));
  return idempotency_->Run<ComputeCluster>(
      *pool_, call, "UpdateComputeCluster", req, req.request_id(),
      [&](pqxx::work& tx, ComputeCluster* answer) -> absl::Status {
        ComputeCluster& out = *answer;
        auto found = ComputeClusterStore::Find(tx, id, /*for_update=*/true);
        if (!found) return NotFound("compute cluster", name);
        const std::string& etag = req.compute_cluster().etag();
        if (!etag.empty() && etag != found->cluster.etag()) return ClusterEtagMismatch(name);
        out = found->cluster;
        SUBMARINE_RETURN_IF_ERROR(ApplyUpdate(req, &out));
        SUBMARINE_RETURN_IF_ERROR(ValidateCluster(out, id, "compute_cluster."));
        *out.mutable_update_time() = Now();
        out.set_etag(ids_.RandomHex(8));
        ComputeClusterStore::Update(tx, found->id, out);
        v1::ComputeClusterUpdated event;
        *event.mutable_compute_cluster() = out;
        return events::AppendToOutbox(tx, event, name, call.request_id, call.subject);
      });
}

absl::StatusOr<ComputeCluster> ComputeClusterManager::Delete(
    const v1::DeleteComputeClusterRequest& req, const rpc::CallInfo& call) {
  std::string id;
  SUBMARINE_RETURN_IF_ERROR(ParseComputeClusterName(req.name(), "name", &id));
  SUBMARINE_RETURN_IF_ERROR(authz_->Check(call, req.name(), Permission::WRITE));
  if (id == kLocal) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "BUILTIN_CLUSTER",
                     "computeClusters/local is built in and cannot be deleted (limit who may use "
                     "it with allowed_projects instead)",
                     {{"resource", req.name()}});
  }
  return idempotency_->Run<ComputeCluster>(
      *pool_, call, "DeleteComputeCluster", req, req.request_id(),
      [&](pqxx::work& tx, ComputeCluster* answer) -> absl::Status {
        auto found = ComputeClusterStore::Find(tx, id, /*for_update=*/true);
        if (!found) return NotFound("compute cluster", req.name());
        if (!req.etag().empty() && req.etag() != found->cluster.etag()) {
          return ClusterEtagMismatch(req.name());
        }
        *answer = found->cluster;
        ComputeClusterStore::Delete(tx, found->id);
        v1::ComputeClusterDeleted event;
        event.set_name(req.name());
        return events::AppendToOutbox(tx, event, req.name(), call.request_id, call.subject);
      });
}

absl::Status ComputeClusterManager::SeedLocal() {
  return pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) -> absl::Status {
    if (!EnvironmentStore::MarkOnce(tx, "local_cluster_seeded")) return absl::OkStatus();
    if (ComputeClusterStore::Find(tx, kLocal, false)) return absl::OkStatus();
    ComputeCluster c;
    c.set_name(absl::StrCat(kClusterPrefix, kLocal));
    c.set_display_name("This host");
    c.set_description("The host the experiment service runs on: tasks run as local processes.");
    c.mutable_local();
    c.set_kind("local");
    *c.mutable_create_time() = Now();
    *c.mutable_update_time() = c.create_time();
    c.set_etag(ids_.RandomHex(8));
    ComputeClusterStore::Insert(tx, kLocal, c);
    v1::ComputeClusterCreated event;
    *event.mutable_compute_cluster() = c;
    return events::AppendToOutbox(tx, event, c.name(), "", "system");
  });
}

}  // namespace submarine::environment
