#include "services/environment/environment_manager.h"

#include <google/protobuf/util/field_mask_util.h>
#include <google/protobuf/util/time_util.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/api/field_mask.h"
#include "common/api/filter_compiler.h"
#include "common/api/labels.h"
#include "common/api/list_request.h"
#include "common/api/names.h"
#include "common/db/migrations.h"
#include "common/events/outbox.h"
#include "common/status/status.h"
#include "services/environment/environment_store.h"

namespace submarine::environment {
namespace {

using google::protobuf::util::TimeUtil;
using submarine::permission::v1::Permission;
using v1::Environment;

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;

absl::Status ParseParent(const std::string& parent, std::string* project) {
  // Whether the project exists is the permission service's answer (see Authorizer::Check).
  return api::ParseProjectName(parent, "parent", project);
}

// Free text of an environment (newlines and tabs allowed).
absl::Status CheckText(const std::string& value, const std::string& field, size_t max) {
  return api::CheckText(value, field, max, /*multiline=*/true);
}

absl::Status CheckList(const google::protobuf::RepeatedPtrField<std::string>& items,
                       const std::string& field) {
  if (items.size() > 1000) return InvalidField(field, "more than 1000 entries");
  for (int i = 0; i < items.size(); ++i) {
    std::string f = absl::StrCat(field, "[", i, "]");
    if (items[i].empty()) return InvalidField(f, "must not be empty");
    SUBMARINE_RETURN_IF_ERROR(CheckText(items[i], f, 512));
  }
  return absl::OkStatus();
}

// Validates the user-settable content of an environment.
absl::Status ValidateContent(const Environment& env, const std::string& prefix) {
  if (env.image().empty()) return InvalidField(prefix + "image", "is required");
  SUBMARINE_RETURN_IF_ERROR(CheckText(env.image(), prefix + "image", 1024));
  for (char c : env.image()) {
    if (c == ' ' || c == '\n' || c == '\t') {
      return InvalidField(prefix + "image", "must not contain whitespace");
    }
  }
  SUBMARINE_RETURN_IF_ERROR(CheckText(env.display_name(), prefix + "display_name", 256));
  SUBMARINE_RETURN_IF_ERROR(CheckText(env.description(), prefix + "description", 4096));
  const auto& k = env.kernel_spec();
  SUBMARINE_RETURN_IF_ERROR(CheckText(k.name(), prefix + "kernel_spec.name", 256));
  SUBMARINE_RETURN_IF_ERROR(CheckList(k.channels(), prefix + "kernel_spec.channels"));
  SUBMARINE_RETURN_IF_ERROR(
      CheckList(k.conda_dependencies(), prefix + "kernel_spec.conda_dependencies"));
  SUBMARINE_RETURN_IF_ERROR(
      CheckList(k.pip_dependencies(), prefix + "kernel_spec.pip_dependencies"));
  SUBMARINE_RETURN_IF_ERROR(api::ValidateLabels(env.labels(), prefix + "labels"));
  return absl::OkStatus();
}

absl::Status EtagMismatch(const std::string& name) {
  return MakeError(absl::StatusCode::kAborted, "ETAG_MISMATCH",
                   absl::StrCat("environment \"", name,
                                "\" was changed concurrently: the etag does not match; read it "
                                "again and retry"),
                   {{"resource", name}});
}

absl::Status ApplyMask(const v1::UpdateEnvironmentRequest& req, Environment* target) {
  const Environment& src = req.environment();
  // Without a mask: the fields the request sets.
  std::vector<std::string> implicit;
  if (!src.display_name().empty()) implicit.push_back("display_name");
  if (!src.description().empty()) implicit.push_back("description");
  if (!src.image().empty()) implicit.push_back("image");
  if (src.has_kernel_spec()) implicit.push_back("kernel_spec");
  if (src.labels_size() > 0) implicit.push_back("labels");
  static const std::set<std::string> kUpdatable = {"display_name",
                                                   "description",
                                                   "image",
                                                   "kernel_spec",
                                                   "kernel_spec.name",
                                                   "kernel_spec.channels",
                                                   "kernel_spec.conda_dependencies",
                                                   "kernel_spec.pip_dependencies",
                                                   "labels"};
  SUBMARINE_ASSIGN_OR_RETURN(auto paths,
                             api::UpdatePaths(req.update_mask(), kUpdatable, std::move(implicit)));
  api::ApplyPaths(paths, src, target);
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateEnvironmentId(const std::string& id, const std::string& field) {
  return api::ValidateResourceId(id, field, "environment");
}

absl::Status ParseEnvironmentName(const std::string& name, const std::string& field,
                                  std::string* project, std::string* environment_id) {
  return api::ParseProjectResourceName(name, field, "environments", "environment", project,
                                       environment_id);
}

EnvironmentManager::EnvironmentManager(db::ConnectionPool* pool, authz::Authorizer* authorizer,
                                       const api::Idempotency* idempotency, const Clock& clock,
                                       IdGenerator& ids)
    : pool_(pool), authz_(authorizer), idempotency_(idempotency), clock_(clock), ids_(ids) {}

google::protobuf::Timestamp EnvironmentManager::Now() const {
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(clock_.Now().time_since_epoch())
          .count();
  return TimeUtil::MicrosecondsToTimestamp(micros);
}

absl::StatusOr<std::string> EnvironmentManager::NewUid(pqxx::work& tx) {
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now().time_since_epoch())
          .count();
  // Apache Submarine's shape, environment_<millis>_<counter padded to 4>; the counter comes from
  // a database sequence, so uids stay unique across replicas and restarts.
  int64_t n = EnvironmentStore::NextUidCounter(tx);
  char buf[64];
  std::snprintf(buf, sizeof buf, "environment_%lld_%04lld", static_cast<long long>(millis),
                static_cast<long long>(n));
  return std::string(buf);
}

absl::StatusOr<Environment> EnvironmentManager::Get(const std::string& name,
                                                    const rpc::CallInfo& call) {
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseEnvironmentName(name, "name", &project, &id));
  SUBMARINE_RETURN_IF_ERROR(authz_->Check(call, name, Permission::READ));
  Environment out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    auto found = EnvironmentStore::Find(tx, project, id, false);
    if (!found) return NotFound("environment", name);
    out = std::move(found->environment);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListEnvironmentsResponse> EnvironmentManager::List(
    const v1::ListEnvironmentsRequest& req, const rpc::CallInfo& call) {
  ListQuery q;
  SUBMARINE_RETURN_IF_ERROR(ParseParent(req.parent(), &q.project));
  SUBMARINE_ASSIGN_OR_RETURN(
      q.limit, api::EffectivePageSize(req.page_size(), kDefaultPageSize, kMaxPageSize));
  SUBMARINE_ASSIGN_OR_RETURN(
      q.filter, api::CompileFilter(req.filter(), EnvironmentStore::FilterFields(q.project)));
  SUBMARINE_ASSIGN_OR_RETURN(auto order,
                             api::ParseOrderBy(req.order_by(), {"create_time"}, "create_time"));
  q.descending = order.descending;
  uint64_t hash = api::QueryHash({req.parent(), req.filter(), req.order_by()});
  SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
  if (!req.page_token().empty()) {
    auto micros = TimeUtil::TimestampToMicroseconds(token.after_time());
    q.after = {std::chrono::system_clock::time_point(std::chrono::microseconds(micros)),
               token.after_id()};
  }
  const int page = q.limit;
  q.limit = page + 1;  // one more row tells whether another page exists
  // One question for the whole list; the answer filters inside the query, so pages stay full
  // and nothing is checked row by row.
  SUBMARINE_ASSIGN_OR_RETURN(
      auto visible, authz_->ListAccessible(call, req.parent(), "environments", Permission::READ));
  if (!visible.all) {
    std::vector<std::string> ids;
    for (const auto& name : visible.names) {
      std::string p, id;
      if (ParseEnvironmentName(name, "name", &p, &id).ok() && p == q.project) {
        ids.push_back(std::move(id));
      }
    }
    q.only_ids = std::move(ids);
  }
  std::vector<StoredEnvironment> rows;
  if (!q.only_ids || !q.only_ids->empty()) {
    SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
      rows = EnvironmentStore::List(tx, q);
      return absl::OkStatus();
    }));
  }
  v1::ListEnvironmentsResponse resp;
  resp.set_next_page_token(api::TakePage(
      rows, page, hash,
      [&](const StoredEnvironment& r) { *resp.add_environments() = r.environment; },
      [](const StoredEnvironment& r, submarine::common::v1::PageToken* next) {
        *next->mutable_after_time() = r.environment.create_time();
        next->set_after_id(r.id);
      }));
  return resp;
}

absl::StatusOr<Environment> EnvironmentManager::Create(const v1::CreateEnvironmentRequest& req,
                                                       const rpc::CallInfo& call) {
  std::string project;
  SUBMARINE_RETURN_IF_ERROR(ParseParent(req.parent(), &project));
  if (req.environment_id().empty()) return InvalidField("environment_id", "is required");
  SUBMARINE_RETURN_IF_ERROR(ValidateEnvironmentId(req.environment_id(), "environment_id"));
  const Environment& in = req.environment();
  std::string name = absl::StrCat(req.parent(), "/environments/", req.environment_id());
  if (!in.name().empty() && in.name() != name) {
    return InvalidField("environment.name",
                        "is output only on create (set parent and environment_id instead)");
  }
  SUBMARINE_RETURN_IF_ERROR(ValidateContent(in, "environment."));
  SUBMARINE_RETURN_IF_ERROR(authz_->Check(call, req.parent(), Permission::WRITE));
  return idempotency_->Run<Environment>(
      *pool_, call, "CreateEnvironment", req, req.request_id(),
      [&](pqxx::work& tx, Environment* answer) -> absl::Status {
    Environment& out = *answer;
    if (EnvironmentStore::Find(tx, project, req.environment_id(), false)) {
      return AlreadyExists("environment", name);
    }
    out = in;
    out.set_name(name);
    SUBMARINE_ASSIGN_OR_RETURN(std::string uid, NewUid(tx));
    out.set_uid(uid);
    *out.mutable_create_time() = Now();
    *out.mutable_update_time() = out.create_time();
    out.set_etag(ids_.RandomHex(8));
    try {
      EnvironmentStore::Insert(tx, project, req.environment_id(), out);
    } catch (const pqxx::unique_violation&) {
      return AlreadyExists("environment", name);  // lost a race with a concurrent create
    }
    v1::EnvironmentCreated event;
    *event.mutable_environment() = out;
    SUBMARINE_RETURN_IF_ERROR(
        events::AppendToOutbox(tx, event, name, call.request_id, call.subject));
    return absl::OkStatus();
  });
}

absl::StatusOr<Environment> EnvironmentManager::Update(const v1::UpdateEnvironmentRequest& req,
                                                       const rpc::CallInfo& call, bool new_uid) {
  const std::string& name = req.environment().name();
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseEnvironmentName(name, "environment.name", &project, &id));
  SUBMARINE_RETURN_IF_ERROR(authz_->Check(call, name, Permission::WRITE));
  // new_uid is part of what was asked (the Submarine face's PATCH), so it is part of the hash.
  v1::UpdateEnvironmentRequest hashed = req;
  if (new_uid) hashed.mutable_environment()->set_uid("<new>");
  return idempotency_->Run<Environment>(
      *pool_, call, "UpdateEnvironment", hashed, req.request_id(),
      [&](pqxx::work& tx, Environment* answer) -> absl::Status {
    Environment& out = *answer;
    auto found = EnvironmentStore::Find(tx, project, id, /*for_update=*/true);
    if (!found) return NotFound("environment", name);
    if (!req.environment().etag().empty() &&
        req.environment().etag() != found->environment.etag()) {
      return EtagMismatch(name);
    }
    out = found->environment;
    SUBMARINE_RETURN_IF_ERROR(ApplyMask(req, &out));
    SUBMARINE_RETURN_IF_ERROR(ValidateContent(out, "environment."));
    if (new_uid) {
      SUBMARINE_ASSIGN_OR_RETURN(std::string uid, NewUid(tx));
      out.set_uid(uid);
    }
    *out.mutable_update_time() = Now();
    out.set_etag(ids_.RandomHex(8));
    EnvironmentStore::Update(tx, found->id, out);
    v1::EnvironmentUpdated event;
    *event.mutable_environment() = out;
    SUBMARINE_RETURN_IF_ERROR(
        events::AppendToOutbox(tx, event, name, call.request_id, call.subject));
    return absl::OkStatus();
  });
}

absl::StatusOr<Environment> EnvironmentManager::Delete(const v1::DeleteEnvironmentRequest& req,
                                                       const rpc::CallInfo& call) {
  std::string project, id;
  SUBMARINE_RETURN_IF_ERROR(ParseEnvironmentName(req.name(), "name", &project, &id));
  SUBMARINE_RETURN_IF_ERROR(authz_->Check(call, req.name(), Permission::WRITE));
  return idempotency_->Run<Environment>(
      *pool_, call, "DeleteEnvironment", req, req.request_id(),
      [&](pqxx::work& tx, Environment* answer) -> absl::Status {
    Environment& out = *answer;
    auto found = EnvironmentStore::Find(tx, project, id, /*for_update=*/true);
    if (!found) return NotFound("environment", req.name());
    if (!req.etag().empty() && req.etag() != found->environment.etag()) {
      return EtagMismatch(req.name());
    }
    out = found->environment;
    EnvironmentStore::Delete(tx, found->id);
    v1::EnvironmentDeleted event;
    event.set_name(req.name());
    event.set_uid(out.uid());
    SUBMARINE_RETURN_IF_ERROR(
        events::AppendToOutbox(tx, event, req.name(), call.request_id, call.subject));
    return absl::OkStatus();
  });
}

absl::Status EnvironmentManager::SeedBuiltins() {
  struct Builtin {
    const char* id;
    const char* image;
    const char* description;
  };
  static constexpr Builtin kBuiltins[] = {
      {"notebook-env", "apache/submarine:jupyter-notebook-0.8.0",
       "Jupyter notebook environment (CPU)"},
      {"notebook-gpu-env", "apache/submarine:jupyter-notebook-gpu-0.8.0",
       "Jupyter notebook environment (GPU)"},
  };
  return pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) -> absl::Status {
    if (!EnvironmentStore::MarkOnce(tx, "builtin_seeded")) return absl::OkStatus();
    for (const auto& b : kBuiltins) {
      if (EnvironmentStore::Find(tx, kDefaultProject, b.id, false)) continue;
      Environment env;
      env.set_name(absl::StrCat("projects/", kDefaultProject, "/environments/", b.id));
      env.set_display_name(b.id);
      env.set_description(b.description);
      env.set_image(b.image);
      auto* k = env.mutable_kernel_spec();
      k->set_name("submarine_jupyter_py3");
      k->add_channels("defaults");
      (*env.mutable_labels())["builtin"] = "true";
      SUBMARINE_ASSIGN_OR_RETURN(std::string uid, NewUid(tx));
      env.set_uid(uid);
      *env.mutable_create_time() = Now();
      *env.mutable_update_time() = env.create_time();
      env.set_etag(ids_.RandomHex(8));
      EnvironmentStore::Insert(tx, kDefaultProject, b.id, env);
      v1::EnvironmentCreated event;
      *event.mutable_environment() = env;
      SUBMARINE_RETURN_IF_ERROR(events::AppendToOutbox(tx, event, env.name(), "", "system"));
    }
    return absl::OkStatus();
  });
}

}  // namespace submarine::environment
