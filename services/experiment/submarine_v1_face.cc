#include "services/experiment/submarine_v1_face.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/api/json_value.h"
#include "common/api/names.h"
#include "common/api/submarine_v1.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"
#include "services/experiment/handle.h"
#include "services/experiment/transitions.h"

namespace submarine::experiment {
namespace {

using api::json::Null;
using api::json::NullableStr;
using api::json::Num;
using api::json::Str;
using api::json::StrList;
using google::protobuf::Value;
using submarine::common::v1::SubmarineV1Response;

constexpr char kProject[] = "default";
constexpr char kInvalidSpec[] = "Invalid experiment spec.";
constexpr char kNotFound[] = "Not found experiment.";
// Every log line of every task of one experiment is returned at once (Apache Submarine's shape);
// beyond this many bytes per task, the start is cut and the first line says so.
constexpr int64_t kMaxLogBytesPerTask = 16 << 20;

std::string NameOf(const std::string& id) {
  return absl::StrCat("projects/", kProject, "/experiments/", id);
}

std::string IdOf(const v1::Experiment& e) { return e.name().substr(e.name().rfind('/') + 1); }

absl::Status V1Error(absl::StatusCode code, const std::string& message) {
  return MakeError(
      code, code == absl::StatusCode::kNotFound ? "RESOURCE_NOT_FOUND" : "INVALID_SPEC", message);
}

// An Apache Submarine error for a failed call: 404 "Not found experiment.", 400 "Invalid
// experiment spec. <why>", anything else as it is.
absl::Status Translate(const absl::Status& st) {
  if (st.code() == absl::StatusCode::kNotFound) {
    return V1Error(absl::StatusCode::kNotFound, kNotFound);
  }
  if (st.code() == absl::StatusCode::kInvalidArgument ||
      st.code() == absl::StatusCode::kUnimplemented) {
    return V1Error(absl::StatusCode::kInvalidArgument,
                   absl::StrCat(kInvalidSpec, " ", Message(st)));
  }
  return st;
}

// Ids of this face are experiment ids of project "default"; anything else is not found.
absl::StatusOr<std::string> FullName(const std::string& id) {
  if (!api::ValidateResourceId(id, "id", "experiment").ok()) {
    return V1Error(absl::StatusCode::kNotFound, kNotFound);
  }
  return NameOf(id);
}

Value Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return Null();
  return Str(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(t.seconds()),
                              absl::UTCTimeZone()));
}

const char* StatusOf(v1::State s) {
  switch (s) {
    case v1::CREATED:
      return "Created";
    case v1::RUNNING:
      return "Running";
    case v1::SUCCEEDED:
      return "Succeeded";
    case v1::FAILED:
    case v1::KILLED:
      return "Failed";
    default:
      return "Accepted";
  }
}

Value StringMap(const google::protobuf::Map<std::string, std::string>& map, bool null_if_empty) {
  if (map.empty() && null_if_empty) return Null();
  Value v;
  auto& f = *v.mutable_struct_value()->mutable_fields();
  for (const auto& [k, val] : map) f[k] = Str(val);
  return v;
}

// "cpu=1,memory=1024M" -> {"cpu": "1", "memory": "1024M"}, as Apache Submarine derives it.
Value ResourceMap(const std::string& resources) {
  Value v;
  auto& f = *v.mutable_struct_value()->mutable_fields();
  for (absl::string_view item : absl::StrSplit(resources, ',', absl::SkipWhitespace())) {
    std::vector<std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.size() == 2) {
      f[std::string(absl::StripAsciiWhitespace(kv[0]))] =
          Str(std::string(absl::StripAsciiWhitespace(kv[1])));
    }
  }
  return v;
}

Value SpecOf(const v1::Experiment& e) {
  const v1::ExperimentSpec& spec = e.spec();
  Value out;
  auto& f = *out.mutable_struct_value()->mutable_fields();
  Value meta;
  auto& m = *meta.mutable_struct_value()->mutable_fields();
  m["experimentId"] = Str(IdOf(e));
  m["name"] = NullableStr(absl::AsciiStrToLower(spec.meta().name()));
  m["namespace"] = Str(kProject);
  m["framework"] = NullableStr(spec.meta().framework());
  m["cmd"] = NullableStr(spec.meta().cmd());
  m["envVars"] = StringMap(spec.meta().env_vars(), false);
  m["tags"] = StrList(spec.meta().tags());
  f["meta"] = meta;
  Value env;
  auto& en = *env.mutable_struct_value()->mutable_fields();
  en["name"] = NullableStr(spec.environment().name());
  en["dockerImage"] = Null();
  en["kernelSpec"] = Null();
  en["description"] = Null();
  en["image"] = NullableStr(spec.environment().image());
  f["environment"] = env;
  Value roles;
  auto& r = *roles.mutable_struct_value()->mutable_fields();
  for (const auto& [name, role] : spec.spec()) {
    Value t;
    auto& tf = *t.mutable_struct_value()->mutable_fields();
    tf["replicas"] = Num(role.replicas() == 0 ? 1 : role.replicas());
    tf["resources"] = NullableStr(role.resources());
    tf["name"] = Null();
    tf["image"] = NullableStr(role.image());
    tf["cmd"] = NullableStr(role.cmd());
    tf["envVars"] = StringMap(role.env_vars(), true);
    tf["resourceMap"] = ResourceMap(role.resources());
    r[name] = t;
  }
  f["spec"] = roles;
  if (spec.has_code() && spec.code().has_git()) {
    Value code;
    auto& c = *code.mutable_struct_value()->mutable_fields();
    c["syncMode"] = Str("git");
    Value git;
    auto& g = *git.mutable_struct_value()->mutable_fields();
    g["url"] = Str(spec.code().git().url());
    g["branch"] = Str(spec.code().git().branch().empty() ? "main" : spec.code().git().branch());
    c["git"] = git;
    f["code"] = code;
  } else {
    f["code"] = Null();
  }
  return out;
}

// Apache Submarine's Experiment: {experimentId, uid, status, acceptedTime, createdTime,
// runningTime, finishedTime, spec}. createdTime is never null (its CLI relies on that): before
// the experiment reaches its cluster it is the creation time, as Apache Submarine's was.
Value ToSubmarine(const v1::Experiment& e, bool deleted = false) {
  Value out;
  auto& f = *out.mutable_struct_value()->mutable_fields();
  f["experimentId"] = Str(IdOf(e));
  f["uid"] = Str(e.uid());
  f["status"] = Str(deleted ? "Deleted" : StatusOf(e.state()));
  google::protobuf::Timestamp created, running;
  for (const auto& h : e.history()) {
    if (h.state() == v1::CREATED) created = h.time();
    if (h.state() == v1::RUNNING) running = h.time();
  }
  if (deleted) {
    for (const char* k : {"acceptedTime", "createdTime", "runningTime", "finishedTime"})
      f[k] = Null();
  } else {
    f["acceptedTime"] = Time(e.create_time());
    f["createdTime"] = Time(created.seconds() != 0 ? created : e.create_time());
    f["runningTime"] = Time(running);
    f["finishedTime"] = Time(e.end_time());
  }
  f["spec"] = SpecOf(e);
  return out;
}

// Every experiment of the project in the given Apache Submarine status ("" = all).
absl::StatusOr<std::vector<v1::Experiment>> ListAll(ExperimentManager* manager,
                                                    const std::string& status,
                                                    const rpc::CallInfo& call) {
  std::vector<v1::Experiment> out;
  v1::ListExperimentsRequest page;
  page.set_parent(absl::StrCat("projects/", kProject));
  page.set_page_size(1000);
  do {
    SUBMARINE_ASSIGN_OR_RETURN(auto r, manager->List(page, call));
    for (auto& e : *r.mutable_experiments()) {
      if (status.empty() || absl::EqualsIgnoreCase(status, StatusOf(e.state()))) {
        out.push_back(std::move(e));
      }
    }
    page.set_page_token(r.next_page_token());
  } while (!page.page_token().empty());
  return out;
}

// {podName, podLog: [lines]} of every task; `with_lines` false leaves podLog empty.
absl::StatusOr<Value> LogsOf(ExperimentManager* manager, const v1::Experiment& e, bool with_lines,
                             const rpc::CallInfo& call) {
  Value out;
  auto& f = *out.mutable_struct_value()->mutable_fields();
  f["experimentId"] = Str(IdOf(e));
  Value contents;
  auto* list = contents.mutable_list_value();
  for (const auto& task : e.tasks()) {
    std::string name = absl::StrCat(task.role(), "-", task.index());
    Value pod;
    auto& p = *pod.mutable_struct_value()->mutable_fields();
    p["podName"] = Str(absl::StrCat(IdOf(e), "-", name));
    Value lines;
    auto* l = lines.mutable_list_value();
    if (with_lines) {
      std::string text;
      int64_t offset = 0;
      v1::GetExperimentLogsRequest req;
      req.set_name(e.name());
      req.set_task(name);
      for (;;) {
        req.set_offset(offset);
        SUBMARINE_ASSIGN_OR_RETURN(auto chunk, manager->GetLogs(req, call));
        if (offset == 0 && chunk.size() > kMaxLogBytesPerTask) {
          offset = chunk.size() - kMaxLogBytesPerTask;
          text = absl::StrCat("(the first ", offset, " bytes of this log are left out)\n");
          continue;
        }
        if (chunk.data().empty()) break;
        text += chunk.data();
        offset = chunk.next_offset();
      }
      for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
        *l->add_values() = Str(std::string(line));
      }
    }
    p["podLog"] = lines;
    *list->add_values() = pod;
  }
  f["logContent"] = contents;
  return out;
}

}  // namespace

absl::StatusOr<v1::ExperimentSpec> FromSubmarineSpec(const v1::SubmarineExperimentSpec& in) {
  v1::ExperimentSpec out;
  auto* meta = out.mutable_meta();
  meta->set_name(absl::AsciiStrToLower(in.meta().name()));
  meta->set_namespace_(in.meta().namespace_());
  meta->set_framework(in.meta().framework());
  meta->set_cmd(in.meta().cmd());
  *meta->mutable_env_vars() = in.meta().env_vars();
  *meta->mutable_tags() = in.meta().tags();
  out.mutable_environment()->set_name(in.environment().name());
  out.mutable_environment()->set_image(in.environment().image().empty()
                                           ? in.environment().docker_image()
                                           : in.environment().image());
  for (const auto& [name, task] : in.spec()) {
    v1::RoleSpec& role = (*out.mutable_spec())[name];
    role.set_replicas(task.replicas());
    role.set_resources(task.resources());
    role.set_image(task.image());
    role.set_cmd(task.cmd());
    *role.mutable_env_vars() = task.env_vars();
  }
  if (in.has_code()) {
    const std::string mode = absl::AsciiStrToLower(in.code().sync_mode());
    if (!mode.empty() && mode != "git") {
      return InvalidField("code.syncMode", "only \"git\" is supported");
    }
    if (!in.code().git().username().empty() || !in.code().git().password().empty()) {
      return InvalidField("code.git.password",
                          "credentials are not accepted inside a spec (they would be stored "
                          "and shown in clear); use a public repository");
    }
    if (in.code().has_git()) {
      out.mutable_code()->mutable_git()->set_url(in.code().git().url());
      out.mutable_code()->mutable_git()->set_branch(in.code().git().branch());
    }
  }
  if (!in.experiment_handler_spec().empty()) {
    return InvalidField("experimentHandlerSpec", "the HDFS data pre-handler is not supported");
  }
  return out;
}

grpc::Status SubmarineExperimentApiImpl::Ping(grpc::ServerContext* ctx,
                                              const v1::SubmarinePingRequest*, Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo&) -> absl::Status {
    api::SubmarineV1Ok(resp, Str("Pong"));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineExperimentApiImpl::CreateExperiment(
    grpc::ServerContext* ctx, const v1::SubmarineCreateExperimentRequest* req, Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    if (!req->has_spec()) {
      // Apache Submarine answers an empty body with HTTP 200, code 200 and this message.
      api::SubmarineV1OkWithError(resp, kInvalidSpec);
      return absl::OkStatus();
    }
    auto spec = FromSubmarineSpec(req->spec());
    if (!spec.ok()) return Translate(spec.status());
    v1::CreateExperimentRequest create;
    create.set_parent(absl::StrCat("projects/", kProject));
    *create.mutable_experiment()->mutable_spec() = *std::move(spec);
    auto created = manager_->Create(create, call);
    if (!created.ok()) return Translate(created.status());
    api::SubmarineV1Ok(resp, ToSubmarine(*created));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineExperimentApiImpl::ListExperiments(
    grpc::ServerContext* ctx, const v1::SubmarineListExperimentsRequest* req, Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(auto all, ListAll(manager_, req->status(), call));
    Value list;
    for (const auto& e : all) *list.mutable_list_value()->add_values() = ToSubmarine(e);
    list.mutable_list_value();
    api::SubmarineV1Ok(resp, std::move(list));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineExperimentApiImpl::GetExperiment(grpc::ServerContext* ctx,
                                                       const v1::SubmarineExperimentIdRequest* req,
                                                       Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(std::string name, FullName(req->id()));
    auto e = manager_->Get(name, call);
    if (!e.ok()) return Translate(e.status());
    api::SubmarineV1Ok(resp, ToSubmarine(*e));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineExperimentApiImpl::PatchExperiment(
    grpc::ServerContext* ctx, const v1::SubmarinePatchExperimentRequest* req, Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(std::string name, FullName(req->id()));
    if (!req->has_spec()) return V1Error(absl::StatusCode::kInvalidArgument, kInvalidSpec);
    auto spec = FromSubmarineSpec(req->spec());
    if (!spec.ok()) return Translate(spec.status());
    auto e = manager_->ReplaceSpec(name, *spec, call);
    if (e.status().code() == absl::StatusCode::kFailedPrecondition) {
      return MakeError(absl::StatusCode::kAborted, "EXPERIMENT_STARTED", Message(e.status()));
    }
    if (!e.ok()) return Translate(e.status());
    api::SubmarineV1Ok(resp, ToSubmarine(*e));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineExperimentApiImpl::DeleteExperiment(
    grpc::ServerContext* ctx, const v1::SubmarineExperimentIdRequest* req, Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(std::string name, FullName(req->id()));
    v1::DeleteExperimentRequest del;
    del.set_name(name);
    auto e = manager_->Delete(del, call);
    if (!e.ok()) return Translate(e.status());
    api::SubmarineV1Ok(resp, ToSubmarine(*e, /*deleted=*/true));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineExperimentApiImpl::ListLogs(grpc::ServerContext* ctx,
                                                  const v1::SubmarineListExperimentsRequest* req,
                                                  Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(auto all, ListAll(manager_, req->status(), call));
    Value list;
    list.mutable_list_value();
    for (const auto& e : all) {
      SUBMARINE_ASSIGN_OR_RETURN(Value logs, LogsOf(manager_, e, /*with_lines=*/false, call));
      *list.mutable_list_value()->add_values() = std::move(logs);
    }
    api::SubmarineV1Ok(resp, std::move(list));
    return absl::OkStatus();
  });
}

grpc::Status SubmarineExperimentApiImpl::GetLog(grpc::ServerContext* ctx,
                                                const v1::SubmarineExperimentIdRequest* req,
                                                Response* resp) {
  return Handle(ctx, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(std::string name, FullName(req->id()));
    auto e = manager_->Get(name, call);
    if (!e.ok()) return Translate(e.status());
    auto logs = LogsOf(manager_, *e, /*with_lines=*/true, call);
    if (!logs.ok()) return Translate(logs.status());
    api::SubmarineV1Ok(resp, *std::move(logs));
    return absl::OkStatus();
  });
}

}  // namespace submarine::experiment
