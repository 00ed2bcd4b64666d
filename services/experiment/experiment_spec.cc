#include "services/experiment/experiment_spec.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/api/names.h"
#include "common/auth/crypto.h"
#include "common/compute/quantity.h"
#include "common/status/status.h"

namespace submarine::experiment {
namespace {

using v1::ExperimentSpec;
using v1::RoleSpec;

constexpr int kMaxReplicas = 1000;
constexpr int kMaxRetries = 100;
constexpr int kMaxPriority = 1000;

const std::map<std::string, std::set<std::string>>& RolesOf() {
  static const auto* roles = new std::map<std::string, std::set<std::string>>{
      {"tensorflow", {"ps", "worker", "chief", "master", "evaluator"}},
      {"pytorch", {"master", "worker"}},
      {"xgboost", {"master", "worker"}},
      {"plain", {}},
  };
  return *roles;
}

bool ValidEnvName(const std::string& name) {
  if (name.empty() || name.size() > 256) return false;
  if (absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

bool ValidPlainRole(const std::string& role) {
  if (role.empty() || role.size() > 31 ||
      !absl::ascii_islower(static_cast<unsigned char>(role[0]))) {
    return false;
  }
  for (char c : role) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '-') {
      return false;
    }
  }
  return true;
}

absl::Status CheckEnv(const google::protobuf::Map<std::string, std::string>& env,
                      const std::string& field) {
  if (env.size() > 256) return InvalidField(field, "more than 256 variables");
  for (const auto& [name, value] : env) {
    std::string f = absl::StrCat(field, ".", api::Quoted(name));
    if (!ValidEnvName(name)) {
      return InvalidField(f, "variable names match [A-Za-z_][A-Za-z0-9_]*");
    }
    if (absl::StartsWith(name, "SUBMARINE_")) {
      return InvalidField(f, "the SUBMARINE_ prefix is reserved for the platform's variables");
    }
    if (value.size() > 32768) return InvalidField(f, "longer than 32768 bytes");
    if (value.find('\0') != std::string::npos) return InvalidField(f, "contains a NUL byte");
  }
  return absl::OkStatus();
}

// The command at one level: args, or a shell string; nullopt when neither is set.
absl::StatusOr<std::optional<std::vector<std::string>>> CommandOf(
    const std::string& cmd, const google::protobuf::RepeatedPtrField<std::string>& args,
    const std::string& prefix) {
  if (!cmd.empty() && !args.empty()) {
    return InvalidField(prefix + "args", "set either cmd (a shell string) or args, not both");
  }
  if (!args.empty()) {
    if (args.size() > 4096) return InvalidField(prefix + "args", "more than 4096 arguments");
    std::vector<std::string> argv;
    for (int i = 0; i < args.size(); ++i) {
      if (args[i].find('\0') != std::string::npos) {
        return InvalidField(absl::StrCat(prefix, "args[", i, "]"), "contains a NUL byte");
      }
      argv.push_back(args[i]);
    }
    if (argv[0].empty()) return InvalidField(prefix + "args[0]", "must name a program");
    return std::optional<std::vector<std::string>>(std::move(argv));
  }
  if (!cmd.empty()) {
    if (cmd.size() > 65536) return InvalidField(prefix + "cmd", "longer than 65536 bytes");
    if (cmd.find('\0') != std::string::npos)
      return InvalidField(prefix + "cmd", "contains a NUL byte");
    return std::optional<std::vector<std::string>>(std::vector<std::string>{"/bin/sh", "-c", cmd});
  }
  return std::optional<std::vector<std::string>>();
}

// Runs before the task's command when the spec names git code: checks the repository out into
// the (fresh) working directory once — a restarted replica keeps its checkout —, prints the
// commit to the task's log, then runs the command with its arguments ("$@").
// A git credential (SUBMARINE_GIT_TOKEN, "token" or "user:token") is answered to git's
// password prompt by a throwaway GIT_ASKPASS script, never put in the URL or on a command line,
// and is unset before the command runs.
constexpr char kGitCheckout[] =
    "set -e\n"
    "if [ ! -d .git ]; then\n"
    "  askpass=\n"
    "  if [ -n \"${SUBMARINE_GIT_TOKEN:-}\" ]; then\n"
    "    askpass=\"$(mktemp)\"\n"
    "    cat > \"$askpass\" <<'EOF'\n"
    "#!/bin/sh\n"
    "case \"$SUBMARINE_GIT_TOKEN\" in *:*) user=\"${SUBMARINE_GIT_TOKEN%%:*}\"; "
    "token=\"${SUBMARINE_GIT_TOKEN#*:}\";; *) user=submarine; token=\"$SUBMARINE_GIT_TOKEN\";; "
    "esac\n"
    "case \"$1\" in Username*) printf '%s\\n' \"$user\";; *) printf '%s\\n' \"$token\";; esac\n"
    "EOF\n"
    "    chmod 700 \"$askpass\"\n"
    "  fi\n"
    "  GIT_ASKPASS=\"$askpass\" GIT_TERMINAL_PROMPT=0 git clone --quiet --depth 1 --branch "
    "\"$SUBMARINE_GIT_BRANCH\" -- \"$SUBMARINE_GIT_URL\" . >&2 || { st=$?; "
    "[ -z \"$askpass\" ] || rm -f \"$askpass\"; exit $st; }\n"
    "  [ -z \"$askpass\" ] || rm -f \"$askpass\"\n"
    "fi\n"
    "unset SUBMARINE_GIT_TOKEN\n"
    "echo \"submarine: code $SUBMARINE_GIT_URL at $(git rev-parse HEAD)\" >&2\n"
    "exec \"$@\"\n";

// Runs before the task's command (and its git checkout) when the spec has pip dependencies and
// the backend is local: builds the dependency list's virtualenv unless a task already did (under
// an flock, so concurrent tasks build it once; a half-built one is rebuilt), then runs the
// command with the virtualenv first on PATH. pip's output goes to the task's log.
constexpr char kPythonEnv[] =
    "set -e\n"
    "venv=\"$SUBMARINE_PYTHON_ENV\"\n"
    "if [ ! -f \"$venv/.submarine-ready\" ]; then\n"
    "  mkdir -p \"$(dirname \"$venv\")\"\n"
    "  exec 9>\"$venv.lock\"\n"
    "  flock 9\n"
    "  if [ ! -f \"$venv/.submarine-ready\" ]; then\n"
    "    echo \"submarine: building the Python environment $venv\" >&2\n"
    "    rm -rf \"$venv\"\n"
    "    /usr/bin/python3 -m venv --system-site-packages \"$venv\" >&2\n"
    "    printf '%s\\n' \"$SUBMARINE_PIP_REQUIREMENTS\" > \"$venv/requirements.txt\"\n"
    "    (\n"
    "      set --\n"
    "      [ -z \"${SUBMARINE_PIP_INDEX_URL:-}\" ] || set -- --index-url "
    "\"$SUBMARINE_PIP_INDEX_URL\"\n"
    "      if [ -n \"${SUBMARINE_PIP_FIND_LINKS:-}\" ]; then\n"
    "        set -- \"$@\" --find-links \"$SUBMARINE_PIP_FIND_LINKS\"\n"
    "        [ -n \"${SUBMARINE_PIP_INDEX_URL:-}\" ] || set -- \"$@\" --no-index\n"
    "      fi\n"
    "      \"$venv/bin/python\" -m pip install --disable-pip-version-check --no-input \"$@\" "
    "-r \"$venv/requirements.txt\" >&2\n"
    "    ) || { st=$?; echo \"submarine: pip could not install the environment's dependencies\" "
    ">&2; rm -rf \"$venv\"; exit $st; }\n"
    "    touch \"$venv/.submarine-ready\"\n"
    "  fi\n"
    "  exec 9>&-\n"
    "fi\n"
    "echo \"submarine: python environment $venv\" >&2\n"
    "export VIRTUAL_ENV=\"$venv\" PATH=\"$venv/bin:$PATH\"\n"
    "unset SUBMARINE_PYTHON_ENV SUBMARINE_PIP_REQUIREMENTS SUBMARINE_PIP_INDEX_URL "
    "SUBMARINE_PIP_FIND_LINKS\n"
    "exec \"$@\"\n";

absl::Status CheckGit(const v1::GitCode& git, const std::string& field) {
  if (git.url().empty()) return InvalidField(field + "url", "is required");
  SUBMARINE_RETURN_IF_ERROR(api::CheckText(git.url(), field + "url", 2048, false));
  static const char* kSchemes[] = {"https://", "http://", "ssh://", "git://", "file://"};
  bool scheme = false;
  for (const char* s : kSchemes) scheme = scheme || absl::StartsWith(git.url(), s);
  if (!scheme && git.url().find('@') == std::string::npos) {
    return InvalidField(field + "url",
                        "use https://, http://, ssh://, git://, file:// or user@host:path");
  }
  if (git.url().front() == '-') return InvalidField(field + "url", "must not start with '-'");
  SUBMARINE_RETURN_IF_ERROR(api::CheckText(git.branch(), field + "branch", 255, false));
  if (!git.branch().empty() && git.branch().front() == '-') {
    return InvalidField(field + "branch", "must not start with '-'");
  }
  if (!git.credential().empty()) {
    // One of the submitter's own credentials: its id, or its full name users/{u}/credentials/{id}.
    const std::vector<std::string> parts = absl::StrSplit(git.credential(), '/');
    const std::string& id = parts.back();
    const bool named =
        parts.size() == 4 && parts[0] == "users" && !parts[1].empty() && parts[2] == "credentials";
    bool valid_id = !id.empty() && id.size() <= 63 && absl::ascii_islower(id[0]);
    for (char c : id) {
      valid_id = valid_id && (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-');
    }
    if (!valid_id || (parts.size() != 1 && !named)) {
      return InvalidField(field + "credential",
                          absl::StrCat("\"", QuoteInput(git.credential()),
                                       "\" is not a credential id ([a-z][a-z0-9-]{0,62}) nor "
                                       "users/{user}/credentials/{id}"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckDependencies(const google::protobuf::RepeatedPtrField<std::string>& deps,
                               const std::string& field) {
  if (deps.size() > 256) return InvalidField(field, "more than 256 dependencies");
  for (int i = 0; i < deps.size(); ++i) {
    const std::string item = absl::StrCat(field, "[", i, "]");
    SUBMARINE_RETURN_IF_ERROR(api::CheckText(deps[i], item, 256, false));
    if (deps[i].empty()) return InvalidField(item, "is empty");
    if (deps[i].front() == '-') {
      return InvalidField(
          item, absl::StrCat("\"", QuoteInput(deps[i]), "\" is an option, not a requirement spec"));
    }
  }
  return absl::OkStatus();
}

std::string PythonEnvPath(const PythonEnvs& envs,
                          const google::protobuf::RepeatedPtrField<std::string>& deps) {
  const std::string key = absl::StrCat(absl::StrJoin(deps, "\n"), "\n--index-url ", envs.index_url,
                                       "\n--find-links ", envs.find_links);
  return absl::StrCat(envs.dir, "/", auth::Sha256Hex(key).substr(0, 20));
}

std::vector<std::string> LaunchWarnings(const ExperimentSpec& resolved,
                                        const std::string& backend_kind,
                                        const PythonEnvs* python_envs) {
  std::vector<std::string> warnings;
  if (backend_kind != "local") return warnings;
  const auto& env = resolved.environment();
  std::set<std::string> images;
  for (const auto& [name, role] : resolved.spec()) {
    if (!role.image().empty()) images.insert(role.image());
  }
  if (!images.empty()) {
    warnings.push_back(absl::StrCat("image ", absl::StrJoin(images, ", "),
                                    " is not used on the local cluster: tasks run on the host"));
  }
  if (!env.conda_dependencies().empty()) {
    warnings.push_back(absl::StrCat("conda dependencies (",
                                    absl::StrJoin(env.conda_dependencies(), ", "),
                                    ") are not installed on the local cluster: tasks run with "
                                    "the host's packages"));
  }
  if (!env.pip_dependencies().empty() && (python_envs == nullptr || python_envs->dir.empty())) {
    warnings.push_back(absl::StrCat("pip dependencies (",
                                    absl::StrJoin(env.pip_dependencies(), ", "),
                                    ") are not installed: this installation has no "
                                    "python_env_dir; tasks run with the host's packages"));
  }
  return warnings;
}

std::string ClusterId(const std::string& compute_cluster) {
  std::string id = compute_cluster;
  if (absl::StartsWith(id, "computeClusters/")) id = id.substr(16);
  return id.empty() ? "local" : id;
}

compute::Resources TotalResources(const ExperimentSpec& resolved) {
  compute::Resources total;
  for (const auto& [name, role] : resolved.spec()) {
    auto r = compute::ParseResources(role.resources(), "resources").value_or(compute::Resources{});
    total.cpu_millis += r.cpu_millis * role.replicas();
    total.memory_bytes += r.memory_bytes * role.replicas();
    total.gpus += r.gpus * role.replicas();
  }
  return total;
}

absl::StatusOr<ExperimentSpec> ResolveSpec(const ExperimentSpec& in, const std::string& prefix,
                                           const std::vector<std::string>& clusters) {
  ExperimentSpec out = in;
  const std::string meta = prefix + "meta.";
  auto* m = out.mutable_meta();
  SUBMARINE_RETURN_IF_ERROR(api::CheckText(in.meta().name(), meta + "name", 256, false));
  std::string framework = absl::AsciiStrToLower(in.meta().framework());
  if (framework.empty()) framework = "plain";
  auto roles_of = RolesOf().find(framework);
  if (roles_of == RolesOf().end()) {
    return InvalidField(meta + "framework",
                        absl::StrCat("unknown framework ", api::Quoted(in.meta().framework()),
                                     "; use tensorflow, pytorch, xgboost or plain"));
  }
  m->set_framework(framework);
  if (in.meta().tags_size() > 64) return InvalidField(meta + "tags", "more than 64 tags");
  for (int i = 0; i < in.meta().tags_size(); ++i) {
    SUBMARINE_RETURN_IF_ERROR(
        api::CheckText(in.meta().tags(i), absl::StrCat(meta, "tags[", i, "]"), 63, false));
  }
  SUBMARINE_RETURN_IF_ERROR(CheckEnv(in.meta().env_vars(), meta + "env_vars"));
  SUBMARINE_ASSIGN_OR_RETURN(auto meta_command, CommandOf(in.meta().cmd(), in.meta().args(), meta));

  SUBMARINE_RETURN_IF_ERROR(
      api::CheckText(in.environment().name(), prefix + "environment.name", 512, false));
  SUBMARINE_RETURN_IF_ERROR(
      api::CheckText(in.environment().image(), prefix + "environment.image", 1024, false));
  SUBMARINE_RETURN_IF_ERROR(CheckDependencies(in.environment().pip_dependencies(),
                                              prefix + "environment.pip_dependencies"));
  SUBMARINE_RETURN_IF_ERROR(CheckDependencies(in.environment().conda_dependencies(),
                                              prefix + "environment.conda_dependencies"));
  const bool git = in.has_code() && in.code().has_git();
  if (git) SUBMARINE_RETURN_IF_ERROR(CheckGit(in.code().git(), prefix + "code.git."));
  std::string cluster = ClusterId(in.compute_cluster());
  if (std::find(clusters.begin(), clusters.end(), cluster) == clusters.end()) {
    return InvalidField(
        prefix + "compute_cluster",
        absl::StrCat("unknown compute cluster ", api::Quoted(in.compute_cluster()),
                     "; this installation has \"", absl::StrJoin(clusters, "\", \""), "\""));
  }
  out.set_compute_cluster(cluster);
  if (in.priority() < -kMaxPriority || in.priority() > kMaxPriority) {
    return InvalidField(prefix + "priority", "must be between -1000 and 1000");
  }
  if (in.has_max_run_time() && (in.max_run_time().seconds() < 0 || in.max_run_time().nanos() < 0)) {
    return InvalidField(prefix + "max_run_time", "must not be negative");
  }
  const auto& retry = in.retry_policy();
  if (retry.max_task_restarts() < 0 || retry.max_task_restarts() > kMaxRetries) {
    return InvalidField(prefix + "retry_policy.max_task_restarts", "must be between 0 and 100");
  }
  if (retry.max_retries() < 0 || retry.max_retries() > kMaxRetries) {
    return InvalidField(prefix + "retry_policy.max_retries", "must be between 0 and 100");
  }

  if (in.spec().empty()) {
    return InvalidField(prefix + "spec", "needs at least one role, e.g. {\"Worker\": {...}}");
  }
  if (framework == "plain" && in.spec().size() != 1) {
    return InvalidField(prefix + "spec", "a plain experiment has exactly one role");
  }
  out.mutable_spec()->clear();
  // Map order is unspecified: resolve in sorted order so errors and results are stable.
  std::map<std::string, RoleSpec> sorted(in.spec().begin(), in.spec().end());
  for (const auto& [given, role] : sorted) {
    const std::string field = absl::StrCat(prefix, "spec.", given, ".");
    std::string name = absl::AsciiStrToLower(given);
    if (framework == "plain" ? !ValidPlainRole(name) : !roles_of->second.count(name)) {
      std::vector<std::string> allowed(roles_of->second.begin(), roles_of->second.end());
      return InvalidField(absl::StrCat(prefix, "spec.", api::Quoted(given)),
                          framework == "plain"
                              ? std::string("role names match [a-z][a-z0-9-]{0,30}")
                              : absl::StrCat("unknown role for ", framework, "; use ",
                                             absl::StrJoin(allowed, ", ")));
    }
    if (out.spec().count(name)) {
      return InvalidField(absl::StrCat(prefix, "spec.", api::Quoted(given)),
                          "the same role is given twice (role names are case-insensitive)");
    }
    RoleSpec r = role;
    if (role.replicas() < 0 || role.replicas() > kMaxReplicas) {
      return InvalidField(field + "replicas", "must be between 1 and 1000");
    }
    if (role.replicas() == 0) r.set_replicas(1);
    SUBMARINE_RETURN_IF_ERROR(
        compute::ParseResources(role.resources(), field + "resources").status());
    SUBMARINE_RETURN_IF_ERROR(api::CheckText(role.image(), field + "image", 1024, false));
    SUBMARINE_RETURN_IF_ERROR(CheckEnv(role.env_vars(), field + "env_vars"));
    SUBMARINE_ASSIGN_OR_RETURN(auto command, CommandOf(role.cmd(), role.args(), field));
    if (!command) command = meta_command;
    if (!command) {
      return InvalidField(field + "cmd", "a command is required: set cmd or args here or in meta");
    }
    r.clear_cmd();
    r.clear_args();
    if (git) {
      for (const char* a : {"/bin/sh", "-c", kGitCheckout, "submarine-git"}) r.add_args(a);
    }
    for (auto& a : *command) r.add_args(a);
    // Role env merged over the experiment's.
    google::protobuf::Map<std::string, std::string> env = in.meta().env_vars();
    for (const auto& [k, v] : role.env_vars()) env[k] = v;
    if (git) {  // the platform's own variables (users cannot set SUBMARINE_*)
      env["SUBMARINE_GIT_URL"] = in.code().git().url();
      env["SUBMARINE_GIT_BRANCH"] =
          in.code().git().branch().empty() ? "main" : in.code().git().branch();
    }
    *r.mutable_env_vars() = env;
    if (!r.has_max_restarts()) r.set_max_restarts(retry.max_task_restarts());
    if (r.max_restarts() < 0 || r.max_restarts() > kMaxRetries) {
      return InvalidField(field + "max_restarts", "must be between 0 and 100");
    }
    if (r.image().empty()) r.set_image(in.environment().image());
    (*out.mutable_spec())[name] = std::move(r);
  }
  m->clear_cmd();
  m->clear_args();
  return out;
}

compute::WorkloadSpec ToWorkload(const ExperimentSpec& resolved, const std::string& id,
                                 const std::map<std::string, std::string>& env,
                                 const std::map<std::string, std::string>& labels,
                                 const PythonEnvs* python_envs) {
  compute::WorkloadSpec w;
  w.id = id;
  w.kind = compute::WorkloadKind::kBatch;
  const std::string& f = resolved.meta().framework();
  w.framework = f == "tensorflow" ? compute::Framework::kTensorflow
                : f == "pytorch"  ? compute::Framework::kPytorch
                : f == "xgboost"  ? compute::Framework::kXgboost
                                  : compute::Framework::kPlain;
  w.env = env;
  w.labels = labels;
  const auto& pip = resolved.environment().pip_dependencies();
  const bool venv = python_envs != nullptr && !python_envs->dir.empty() && !pip.empty();
  if (venv) {
    w.env["SUBMARINE_PYTHON_ENV"] = PythonEnvPath(*python_envs, pip);
    w.env["SUBMARINE_PIP_REQUIREMENTS"] = absl::StrJoin(pip, "\n");
    if (!python_envs->index_url.empty()) w.env["SUBMARINE_PIP_INDEX_URL"] = python_envs->index_url;
    if (!python_envs->find_links.empty()) {
      w.env["SUBMARINE_PIP_FIND_LINKS"] = python_envs->find_links;
    }
  }
  // Master/chief first so rank 0 is the coordinator, then the rest by name.
  std::vector<std::string> order;
  for (const char* first : {"master", "chief"}) {
    if (resolved.spec().count(first)) order.push_back(first);
  }
  std::map<std::string, RoleSpec> sorted(resolved.spec().begin(), resolved.spec().end());
  for (const auto& [name, role] : sorted) {
    if (name != "master" && name != "chief") order.push_back(name);
  }
  for (const std::string& name : order) {
    const RoleSpec& r = resolved.spec().at(name);
    compute::RoleSpec role;
    role.name = name;
    role.replicas = r.replicas();
    if (venv) role.command = {"/bin/sh", "-c", kPythonEnv, "submarine-env"};
    role.command.insert(role.command.end(), r.args().begin(), r.args().end());
    role.env.insert(r.env_vars().begin(), r.env_vars().end());
    role.resources =
        compute::ParseResources(r.resources(), "resources").value_or(compute::Resources{});
    role.image = r.image();
    role.max_restarts = r.max_restarts();
    w.roles.push_back(std::move(role));
  }
  return w;
}

}  // namespace submarine::experiment
