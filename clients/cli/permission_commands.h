#pragma once
// The commands over the permission service's REST API: login, logout, whoami, user, team,
// project (with role bindings), grant, quota, lease, token, credential and audit. Each prints its
// result to ctx.out in ctx.format and returns the server's error, if any. Passwords and secrets
// are read from standard input (the --*-stdin flags) or prompted for with echo off; they are never
// taken from the command line and never printed.

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/cli/api_client.h"
#include "clients/cli/output.h"

namespace submarine::cli {

struct ClientContext {
  ApiClient* api = nullptr;
  OutputFormat format = OutputFormat::kTable;
  std::ostream* out = nullptr;
  std::istream* in = nullptr;  // for --*-stdin
};

// ---- Names and values accepted on the command line.
// "alice" -> "users/alice"; a full name is returned unchanged.
std::string UserResource(const std::string& name_or_id);
// "ml" -> "teams/ml".
std::string TeamResource(const std::string& name_or_id);
// "p" -> "projects/p".
std::string ProjectResource(const std::string& name_or_id);
// "users/x", "teams/x" or "allUsers"; INVALID_ARGUMENT (field `field`) otherwise.
absl::StatusOr<std::string> ParseSubject(const std::string& text, const std::string& field);
// Quota owners: "users/x" or "teams/x"; a bare name is a user.
absl::StatusOr<std::string> ParseOwner(const std::string& text);
// viewer|editor|admin -> VIEWER|EDITOR|PROJECT_ADMIN (the enum names are accepted too).
absl::StatusOr<std::string> ParseRole(const std::string& text);
// read|write|admin -> READ|WRITE|ADMIN.
absl::StatusOr<std::string> ParsePermission(const std::string& text);
// member|maintainer|owner -> MEMBER|MAINTAINER|OWNER.
absl::StatusOr<std::string> ParseTeamRole(const std::string& text);
// A duration: "90d", "12h", "30m", "45s" or plain seconds ("0": none). INVALID_ARGUMENT otherwise.
absl::StatusOr<int64_t> ParseDurationSeconds(const std::string& text, const std::string& field);
// A point in time for filters: RFC 3339 as is, or a duration meaning that long before `now_unix`
// ("2h" -> two hours ago), rendered as RFC 3339 UTC.
absl::StatusOr<std::string> ParseTimeBound(const std::string& text, int64_t now_unix,
                                           const std::string& field);

// ---- Session.
struct LoginOptions {
  std::string username;         // "" -> prompted for
  bool password_stdin = false;  // read the password from ctx.in instead of prompting
};
absl::Status Login(const ClientContext& ctx, const LoginOptions& options);
absl::Status Logout(const ClientContext& ctx);
absl::Status WhoAmI(const ClientContext& ctx);

// ---- Users.
struct UserFields {
  std::optional<std::string> display_name;
  std::optional<std::string> email;
  std::optional<bool> disabled;
  std::optional<bool> admin;
};
absl::Status ListUsers(const ClientContext& ctx, const std::string& filter);
absl::Status GetUser(const ClientContext& ctx, const std::string& name);
// The initial password comes from ctx.in (first line) when `password_stdin`, else a prompt.
absl::Status CreateUser(const ClientContext& ctx, const std::string& user_id,
                        const UserFields& fields, bool password_stdin);
// Only the fields set change.
absl::Status UpdateUser(const ClientContext& ctx, const std::string& name,
                        const UserFields& fields);
absl::Status DeleteUser(const ClientContext& ctx, const std::string& name);
// Changing one's own password also needs the current one: with `password_stdin` the first line of
// ctx.in is the current password and the second the new one; otherwise both are prompted for.
absl::Status SetPassword(const ClientContext& ctx, const std::string& name, bool password_stdin);

// ---- Teams.
absl::Status ListTeams(const ClientContext& ctx);
absl::Status GetTeam(const ClientContext& ctx, const std::string& name);
absl::Status CreateTeam(const ClientContext& ctx, const std::string& team_id,
                        const std::string& display_name, const std::string& description);
absl::Status DeleteTeam(const ClientContext& ctx, const std::string& name);
absl::Status AddTeamMember(const ClientContext& ctx, const std::string& team,
                           const std::string& user, const std::string& role);
absl::Status RemoveTeamMember(const ClientContext& ctx, const std::string& team,
                              const std::string& user);
absl::Status ListTeamMembers(const ClientContext& ctx, const std::string& team);

// ---- Projects and role bindings.
absl::Status ListProjects(const ClientContext& ctx);
absl::Status GetProject(const ClientContext& ctx, const std::string& name);
// `owner` "" means the caller.
// A project's settable fields; an unset one is left alone (update) or empty (create).
struct ProjectFields {
  std::optional<std::string> display_name;
  std::optional<std::string> description;
  std::optional<std::string> owner;            // users/NAME or teams/NAME
  std::optional<std::string> default_cluster;  // a cluster id or computeClusters/ID; "" = local
};
absl::Status CreateProject(const ClientContext& ctx, const std::string& project_id,
                           const ProjectFields& fields);
absl::Status UpdateProject(const ClientContext& ctx, const std::string& name,
                           const ProjectFields& fields);
absl::Status DeleteProject(const ClientContext& ctx, const std::string& name);
absl::Status BindRole(const ClientContext& ctx, const std::string& project,
                      const std::string& subject, const std::string& role);
// `binding_or_subject`: a binding name or id, or a subject whose binding to remove.
absl::Status UnbindRole(const ClientContext& ctx, const std::string& project,
                        const std::string& binding_or_subject);
absl::Status ListRoleBindings(const ClientContext& ctx, const std::string& project);

// ---- Grants.
absl::Status ListGrants(const ClientContext& ctx, const std::string& resource);
absl::Status CreateGrant(const ClientContext& ctx, const std::string& resource,
                         const std::string& subject, const std::string& permission);
absl::Status DeleteGrant(const ClientContext& ctx, const std::string& name);

// ---- Quotas and leases.
struct QuotaLimits {
  std::optional<int64_t> cpu_millis;
  std::optional<int64_t> memory_mib;
  std::optional<int64_t> gpus;
  std::optional<int64_t> experiments;
  std::optional<int64_t> notebooks;
  std::optional<int64_t> serving_replicas;
};
absl::Status GetQuota(const ClientContext& ctx, const std::string& owner);
absl::Status SetQuota(const ClientContext& ctx, const std::string& owner,
                      const QuotaLimits& limits);
absl::Status ListLeases(const ClientContext& ctx, const std::string& owner);

// ---- API tokens (of `user`; "" means the caller).
absl::Status ListTokens(const ClientContext& ctx, const std::string& user);
// Prints the secret once (table: with a warning to store it; JSON/YAML: field "secret").
// `project` ("" = none): the token may act only on that project's resources.
absl::Status CreateToken(const ClientContext& ctx, const std::string& user,
                         const std::string& display_name, const std::string& ttl,
                         const std::string& project = "");
absl::Status RevokeToken(const ClientContext& ctx, const std::string& user,
                         const std::string& name);

// ---- Credentials (of `user`; "" means the caller; kPlatformCredentials: the platform's, for
// administrators — e.g. a compute cluster's kubeconfig).
inline constexpr char kPlatformCredentials[] = "platform";
struct CredentialInput {
  std::string type = "generic";
  std::string description;
  std::string secret_file;  // read the secret from this file ("-": ctx.in, all of it)
};
absl::Status ListCredentials(const ClientContext& ctx, const std::string& user);
// Without a secret_file the secret is prompted for with echo off.
absl::Status CreateCredential(const ClientContext& ctx, const std::string& user,
                              const std::string& credential_id, const CredentialInput& input);
absl::Status DeleteCredential(const ClientContext& ctx, const std::string& user,
                              const std::string& name);

// ---- Audit.
struct AuditQuery {
  std::string principal;  // "alice" or "users/alice"
  std::string resource;   // prefix
  std::string since;      // RFC 3339 or a duration ago ("24h")
  std::string until;
  int limit = 100;  // events at most (all pages until then); 0: every event
};
absl::Status ListAuditEvents(const ClientContext& ctx, const AuditQuery& query, int64_t now_unix);

}  // namespace submarine::cli
