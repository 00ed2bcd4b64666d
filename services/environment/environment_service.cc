#include "services/environment/environment_service.h"

#include "absl/strings/str_cat.h"
#include "common/api/json_value.h"
#include "common/api/submarine_v1.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::environment {
namespace {

using google::protobuf::Value;
using submarine::common::v1::SubmarineV1Response;

// Runs `body` with the call's CallInfo (rpc::HandleCall).
template <class F>
grpc::Status Handle(grpc::ServerContext* ctx, F&& body) {
  return rpc::HandleCall(*ctx, kErrorDomain, std::forward<F>(body));
}

// --- Apache Submarine face -------------------------------------------------------------------

constexpr char kInvalidSpec[] = "Invalid environment spec.";
constexpr char kUnableToProcess[] = "Unable to process the environment spec.";
constexpr char kNotFound[] = "Environment not found.";

absl::Status V1Error(absl::StatusCode code, const std::string& message,
                     const absl::Status& cause = absl::OkStatus()) {
  google::rpc::ErrorInfo info;
  std::string reason = code == absl::StatusCode::kNotFound ? "RESOURCE_NOT_FOUND" : "INVALID_SPEC";
  if (!cause.ok()) {
    if (GetErrorInfo(cause, &info) && info.metadata().count("field")) {
      return MakeError(code, reason, message,
                       {{"field", info.metadata().at("field")}, {"cause", Message(cause)}});
    }
    return MakeError(code, reason, message, {{"cause", Message(cause)}});
  }
  return MakeError(code, reason, message);
}

using api::json::Null;
using api::json::NullableStr;
using api::json::Str;
using api::json::StrList;

// {environmentId, environmentSpec{name, dockerImage, kernelSpec, description, image}}
Value ToSubmarine(const v1::Environment& env) {
  std::string project, id;
  (void)ParseEnvironmentName(env.name(), "name", &project, &id);
  Value out;
  auto& f = *out.mutable_struct_value()->mutable_fields();
  f["environmentId"] = Str(env.uid());
  Value spec;
  auto& s = *spec.mutable_struct_value()->mutable_fields();
  s["name"] = Str(id);
  s["dockerImage"] = Str(env.image());
  if (env.has_kernel_spec()) {
    Value k;
    auto& kf = *k.mutable_struct_value()->mutable_fields();
    kf["name"] = NullableStr(env.kernel_spec().name());
    kf["channels"] = StrList(env.kernel_spec().channels());
    kf["condaDependencies"] = StrList(env.kernel_spec().conda_dependencies());
    kf["pipDependencies"] = StrList(env.kernel_spec().pip_dependencies());
    s["kernelSpec"] = k;
  } else {
    s["kernelSpec"] = Null();
  }
  s["description"] = NullableStr(env.description());
  s["image"] = Null();
  f["environmentSpec"] = spec;
  return out;
}


std::string DefaultName(const std::string& id) {
  return absl::StrCat("projects/", EnvironmentManager::kDefaultProject, "/environments/", id);
}

// Copies a Submarine spec onto an environment. dockerImage is the environment's image; the
// anonymous-environment `image` is used when dockerImage is absent.
void FromSubmarine(const v1::SubmarineEnvironmentSpec& spec, v1::Environment* env) {
  env->set_image(spec.docker_image().empty() ? spec.image() : spec.docker_image());
  env->set_description(spec.description());
  if (spec.has_kernel_spec()) *env->mutable_kernel_spec() = spec.kernel_spec();
}

}  // namespace

grpc::Status EnvironmentServiceImpl::GetEnvironment(grpc::ServerContext* ctx,
                                                    const v1::GetEnvironmentRequest* req,
                                                    v1::Environment* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(*resp, manager_->Get(req->name(), call));
    return absl::OkStatus();
  });
}

grpc::Status EnvironmentServiceImpl::ListEnvironments(grpc::ServerContext* ctx,
                                                      const v1::ListEnvironmentsRequest* req,
                                                      v1::ListEnvironmentsResponse* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(*resp, manager_->List(*req, call));
    return absl::OkStatus();
  });
}

grpc::Status EnvironmentServiceImpl::CreateEnvironment(grpc::ServerContext* ctx,
                                                       const v1::CreateEnvironmentRequest* req,
                                                       v1::Environment* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(*resp, manager_->Create(*req, call));
    return absl::OkStatus();
  });
}

grpc::Status EnvironmentServiceImpl::UpdateEnvironment(grpc::ServerContext* ctx,
                                                       const v1::UpdateEnvironmentRequest* req,
                                                       v1::Environment* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(*resp, manager_->Update(*req, call));
    return absl::OkStatus();
  });
}

grpc::Status EnvironmentServiceImpl::DeleteEnvironment(grpc::ServerContext* ctx,
                                                       const v1::DeleteEnvironmentRequest* req,
                                                       v1::DeleteEnvironmentResponse* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(*resp->mutable_environment(), manager_->Delete(*req, call));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineEnvironmentApiImpl::CreateEnvironment(
    grpc::ServerContext* ctx, const v1::SubmarineCreateEnvironmentRequest* req,
    SubmarineV1Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    if (!req->has_spec() || req->spec().name().empty()) {
      return V1Error(absl::StatusCode::kInvalidArgument, kInvalidSpec);
    }
    v1::CreateEnvironmentRequest create;
    create.set_parent(absl::StrCat("projects/", EnvironmentManager::kDefaultProject));
    create.set_environment_id(req->spec().name());
    FromSubmarine(req->spec(), create.mutable_environment());
    create.mutable_environment()->set_display_name(req->spec().name());
    auto env = manager_->Create(create, call);
    if (!env.ok()) {
      if (env.status().code() == absl::StatusCode::kAlreadyExists) {
        return V1Error(absl::StatusCode::kInvalidArgument, kUnableToProcess, env.status());
      }
      if (env.status().code() == absl::StatusCode::kInvalidArgument) {
        return V1Error(absl::StatusCode::kInvalidArgument, kInvalidSpec, env.status());
      }
      return env.status();
    }
    api::SubmarineV1Ok(resp, ToSubmarine(*env));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineEnvironmentApiImpl::ListEnvironments(
    grpc::ServerContext* ctx, const v1::SubmarineListEnvironmentsRequest* req,
    SubmarineV1Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    Value all;
    auto* list = all.mutable_list_value();
    v1::ListEnvironmentsRequest page;
    page.set_parent(absl::StrCat("projects/", EnvironmentManager::kDefaultProject));
    page.set_page_size(1000);
    do {
      SUBMARINE_ASSIGN_OR_RETURN(auto r, manager_->List(page, call));
      for (const auto& env : r.environments()) *list->add_values() = ToSubmarine(env);
      page.set_page_token(r.next_page_token());
    } while (!page.page_token().empty());
    api::SubmarineV1Ok(resp, std::move(all));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineEnvironmentApiImpl::GetEnvironment(
    grpc::ServerContext* ctx, const v1::SubmarineEnvironmentNameRequest* req,
    SubmarineV1Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    if (!ValidateEnvironmentId(req->name(), "name").ok()) {
      return V1Error(absl::StatusCode::kNotFound, kNotFound);
    }
    auto env = manager_->Get(DefaultName(req->name()), call);
    if (env.status().code() == absl::StatusCode::kNotFound) {
      return V1Error(absl::StatusCode::kNotFound, kNotFound);
    }
    if (!env.ok()) return env.status();
    api::SubmarineV1Ok(resp, ToSubmarine(*env));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineEnvironmentApiImpl::PatchEnvironment(
    grpc::ServerContext* ctx, const v1::SubmarinePatchEnvironmentRequest* req,
    SubmarineV1Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    if (!ValidateEnvironmentId(req->name(), "name").ok()) {
      return V1Error(absl::StatusCode::kNotFound, kNotFound);
    }
    if (!req->has_spec()) return V1Error(absl::StatusCode::kInvalidArgument, kInvalidSpec);
    v1::UpdateEnvironmentRequest update;
    auto* env = update.mutable_environment();
    env->set_name(DefaultName(req->name()));
    FromSubmarine(req->spec(), env);
    // The Submarine PATCH replaces the spec (renaming through the body is ignored).
    for (const char* path : {"image", "description", "kernel_spec"}) {
      update.mutable_update_mask()->add_paths(path);
    }
    auto updated = manager_->Update(update, call, /*new_uid=*/true);
    if (updated.status().code() == absl::StatusCode::kNotFound) {
      return V1Error(absl::StatusCode::kNotFound, kNotFound);
    }
    if (updated.status().code() == absl::StatusCode::kInvalidArgument) {
      return V1Error(absl::StatusCode::kInvalidArgument, kInvalidSpec, updated.status());
    }
    if (!updated.ok()) return updated.status();
    api::SubmarineV1Ok(resp, ToSubmarine(*updated));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineEnvironmentApiImpl::DeleteEnvironment(
    grpc::ServerContext* ctx, const v1::SubmarineEnvironmentNameRequest* req,
    SubmarineV1Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    if (!ValidateEnvironmentId(req->name(), "name").ok()) {
      return V1Error(absl::StatusCode::kNotFound, kNotFound);
    }
    v1::DeleteEnvironmentRequest del;
    del.set_name(DefaultName(req->name()));
    auto env = manager_->Delete(del, call);
    if (env.status().code() == absl::StatusCode::kNotFound) {
      return V1Error(absl::StatusCode::kNotFound, kNotFound);
    }
    if (!env.ok()) return env.status();
    api::SubmarineV1Ok(resp, ToSubmarine(*env));
    return absl::OkStatus();
  });
}

}  // namespace submarine::environment
