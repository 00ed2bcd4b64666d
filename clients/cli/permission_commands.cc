#include "clients/cli/permission_commands.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/cli/secret_input.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

namespace pb = submarine::permission::v1;
using google::protobuf::RepeatedPtrField;

// Secrets larger than this are refused locally (the server's limit for credentials is 64 KiB).
constexpr size_t kMaxSecretBytes = 64 * 1024;

std::string Identity(const char* method) {
  return absl::StrCat("submarine.permission.v1.IdentityService.", method);
}
std::string Access(const char* method) {
  return absl::StrCat("submarine.permission.v1.AccessService.", method);
}
std::string Quota(const char* method) {
  return absl::StrCat("submarine.permission.v1.QuotaService.", method);
}
std::string Credential(const char* method) {
  return absl::StrCat("submarine.permission.v1.CredentialService.", method);
}
std::string Audit(const char* method) {
  return absl::StrCat("submarine.permission.v1.AuditService.", method);
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string WithPrefix(const std::string& prefix, const std::string& name_or_id) {
  return name_or_id.rfind(prefix, 0) == 0 ? name_or_id : prefix + name_or_id;
}

// Every item of a paginated List: follows next_page_token until the end or `limit` items (0: no
// limit).
template <typename Response, typename Item, typename Request>
absl::StatusOr<std::vector<Item>> ListAll(const ClientContext& ctx, const std::string& rpc,
                                          Request request,
                                          const RepeatedPtrField<Item>& (Response::*items)() const,
                                          size_t limit = 0) {
  std::vector<Item> all;
  do {
    SUBMARINE_ASSIGN_OR_RETURN(Response page, ctx.api->Call<Response>(rpc, request));
    for (const Item& item : (page.*items)()) {
      if (limit > 0 && all.size() >= limit) return all;
      all.push_back(item);
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && (limit == 0 || all.size() < limit));
  return all;
}

template <typename Item>
std::vector<Item> Items(const RepeatedPtrField<Item>& items) {
  return std::vector<Item>(items.begin(), items.end());
}

// An enum value as a word for tables: "MAINTAINER" -> "maintainer"; "" when unset.
template <typename Enum>
std::string EnumWord(Enum value, const std::string& name) {
  return static_cast<int>(value) == 0 ? "" : Lower(name);
}

std::string Flag(bool value) { return value ? "yes" : ""; }

const std::vector<Column<pb::User>>& UserColumns() {
  static const auto* columns = new std::vector<Column<pb::User>>{
      {"USERNAME", [](const pb::User& u) { return LastSegmentOf(u.name()); }},
      {"DISPLAY NAME", [](const pb::User& u) { return u.display_name(); }},
      {"EMAIL", [](const pb::User& u) { return u.email(); }},
      {"ADMIN", [](const pb::User& u) { return Flag(u.admin()); }},
      {"DISABLED", [](const pb::User& u) { return Flag(u.disabled()); }},
      {"TEAMS", [](const pb::User& u) {
         std::string out;
         for (const auto& t : u.teams())
           absl::StrAppend(&out, out.empty() ? "" : ",", LastSegmentOf(t));
         return out;
       }}};
  return *columns;
}

const std::vector<Column<pb::Team>>& TeamColumns() {
  static const auto* columns = new std::vector<Column<pb::Team>>{
      {"TEAM", [](const pb::Team& t) { return LastSegmentOf(t.name()); }},
      {"DISPLAY NAME", [](const pb::Team& t) { return t.display_name(); }},
      {"MEMBERS", [](const pb::Team& t) { return absl::StrCat(t.member_count()); }},
      {"DESCRIPTION", [](const pb::Team& t) { return t.description(); }},
      {"CREATED", [](const pb::Team& t) { return TimeText(t.create_time()); }}};
  return *columns;
}

const std::vector<Column<pb::TeamMember>>& MemberColumns() {
  static const auto* columns = new std::vector<Column<pb::TeamMember>>{
      {"USER", [](const pb::TeamMember& m) { return LastSegmentOf(m.user()); }},
      {"ROLE",
       [](const pb::TeamMember& m) { return EnumWord(m.role(), pb::TeamRole_Name(m.role())); }}};
  return *columns;
}

const std::vector<Column<pb::Project>>& ProjectColumns() {
  static const auto* columns = new std::vector<Column<pb::Project>>{
      {"PROJECT", [](const pb::Project& p) { return LastSegmentOf(p.name()); }},
      {"DISPLAY NAME", [](const pb::Project& p) { return p.display_name(); }},
      {"OWNER", [](const pb::Project& p) { return p.owner(); }},
      {"DEFAULT CLUSTER",
       [](const pb::Project& p) { return LastSegmentOf(p.default_compute_cluster()); }},
      {"DESCRIPTION", [](const pb::Project& p) { return p.description(); }},
      {"CREATED", [](const pb::Project& p) { return TimeText(p.create_time()); }}};
  return *columns;
}

std::string RoleWord(pb::Role role) {
  if (role == pb::PROJECT_ADMIN) return "admin";
  return EnumWord(role, pb::Role_Name(role));
}

const std::vector<Column<pb::RoleBinding>>& BindingColumns() {
  static const auto* columns = new std::vector<Column<pb::RoleBinding>>{
      {"ID", [](const pb::RoleBinding& b) { return LastSegmentOf(b.name()); }},
      {"SUBJECT", [](const pb::RoleBinding& b) { return b.subject(); }},
      {"ROLE", [](const pb::RoleBinding& b) { return RoleWord(b.role()); }},
      {"CREATED", [](const pb::RoleBinding& b) { return TimeText(b.create_time()); }}};
  return *columns;
}

const std::vector<Column<pb::Grant>>& GrantColumns() {
  static const auto* columns = new std::vector<Column<pb::Grant>>{
      {"ID", [](const pb::Grant& g) { return LastSegmentOf(g.name()); }},
      {"RESOURCE", [](const pb::Grant& g) { return g.resource(); }},
      {"SUBJECT", [](const pb::Grant& g) { return g.subject(); }},
      {"PERMISSION",
       [](const pb::Grant& g) {
         return EnumWord(g.permission(), pb::Permission_Name(g.permission()));
       }},
      {"CREATOR", [](const pb::Grant& g) { return g.creator(); }},
      {"CREATED", [](const pb::Grant& g) { return TimeText(g.create_time()); }}};
  return *columns;
}

// The six resources of a quota: their labels, and whether/what a Resources message holds.
struct ResourceKind {
  const char* short_label;  // in a lease's RESOURCES cell
  const char* long_label;   // in the quota table
  bool (pb::Resources::*has)() const;
  int64_t (pb::Resources::*value)() const;
};

const std::vector<ResourceKind>& ResourceKinds() {
  static const auto* kinds = new std::vector<ResourceKind>{
      {"cpu", "cpu (millicores)", &pb::Resources::has_cpu_millis, &pb::Resources::cpu_millis},
      {"mem", "memory (MiB)", &pb::Resources::has_memory_mib, &pb::Resources::memory_mib},
      {"gpu", "gpus", &pb::Resources::has_gpus, &pb::Resources::gpus},
      {"experiments", "experiments", &pb::Resources::has_experiments, &pb::Resources::experiments},
      {"notebooks", "notebooks", &pb::Resources::has_notebooks, &pb::Resources::notebooks},
      {"serving", "serving replicas", &pb::Resources::has_serving_replicas,
       &pb::Resources::serving_replicas}};
  return *kinds;
}

std::string ResourcesText(const pb::Resources& resources) {
  std::string out;
  for (const ResourceKind& kind : ResourceKinds()) {
    if ((resources.*kind.has)()) {
      absl::StrAppend(&out, out.empty() ? "" : ",", kind.short_label, "=",
                      (resources.*kind.value)());
    }
  }
  return out;
}

const std::vector<Column<pb::Lease>>& LeaseColumns() {
  static const auto* columns = new std::vector<Column<pb::Lease>>{
      {"LEASE", [](const pb::Lease& l) { return LastSegmentOf(l.name()); }},
      {"OWNER", [](const pb::Lease& l) { return l.owner(); }},
      {"PROJECT", [](const pb::Lease& l) { return l.project(); }},
      {"HOLDER", [](const pb::Lease& l) { return l.holder(); }},
      {"RESOURCES", [](const pb::Lease& l) { return ResourcesText(l.resources()); }},
      {"EXPIRES", [](const pb::Lease& l) { return TimeText(l.expire_time()); }}};
  return *columns;
}

const std::vector<Column<pb::ApiToken>>& TokenColumns() {
  static const auto* columns = new std::vector<Column<pb::ApiToken>>{
      {"ID", [](const pb::ApiToken& t) { return LastSegmentOf(t.name()); }},
      {"DISPLAY NAME", [](const pb::ApiToken& t) { return t.display_name(); }},
      {"SCOPE", [](const pb::ApiToken& t) { return t.scope(); }},
      {"CREATED", [](const pb::ApiToken& t) { return TimeText(t.create_time()); }},
      {"EXPIRES",
       [](const pb::ApiToken& t) {
         std::string time = TimeText(t.expire_time());
         return time.empty() ? std::string("never") : time;
       }},
      {"REVOKED", [](const pb::ApiToken& t) { return TimeText(t.revoke_time()); }}};
  return *columns;
}

const std::vector<Column<pb::Credential>>& CredentialColumns() {
  static const auto* columns = new std::vector<Column<pb::Credential>>{
      {"ID", [](const pb::Credential& c) { return LastSegmentOf(c.name()); }},
      {"TYPE", [](const pb::Credential& c) { return c.type(); }},
      {"DESCRIPTION", [](const pb::Credential& c) { return c.description(); }},
      {"UPDATED", [](const pb::Credential& c) { return TimeText(c.update_time()); }}};
  return *columns;
}

const std::vector<Column<pb::AuditEvent>>& AuditColumns() {
  static const auto* columns = new std::vector<Column<pb::AuditEvent>>{
      {"TIME", [](const pb::AuditEvent& e) { return TimeText(e.occur_time()); }},
      {"PRINCIPAL", [](const pb::AuditEvent& e) { return e.principal(); }},
      {"TYPE", [](const pb::AuditEvent& e) { return e.type(); }},
      {"RESOURCE", [](const pb::AuditEvent& e) { return e.resource(); }},
      {"REQUEST ID", [](const pb::AuditEvent& e) { return e.request_id(); }}};
  return *columns;
}

template <typename M>
void Print(const ClientContext& ctx, const std::vector<M>& items,
           const std::vector<Column<M>>& columns, bool single) {
  *ctx.out << FormatMessages(items, columns, ctx.format, single);
}

// After a delete: a line for people; for scripts what the server answered, or the deleted name
// when the answer is empty.
void PrintDeleted(const ClientContext& ctx, const std::string& name,
                  const google::protobuf::Message& answer) {
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Deleted " << name << "\n";
    return;
  }
  nlohmann::ordered_json value = MessageToJson(answer);
  if (value.empty()) value = {{"name", name}};
  *ctx.out << FormatValue(value, ctx.format);
}

// A new password: the first line of ctx.in, or prompted for twice.
absl::StatusOr<std::string> NewPassword(const ClientContext& ctx, bool from_stdin,
                                        const std::string& prompt) {
  if (from_stdin) return ReadSecretLine(*ctx.in, "password");
  SUBMARINE_ASSIGN_OR_RETURN(std::string first, PromptSecret(prompt + ": ", "--password-stdin"));
  SUBMARINE_ASSIGN_OR_RETURN(std::string again,
                             PromptSecret("Repeat " + Lower(prompt) + ": ", "--password-stdin"));
  if (first != again) return InvalidField("password", "the two passwords differ");
  if (first.empty()) return InvalidField("password", "the password is empty");
  return first;
}

absl::StatusOr<std::string> UserOrSelf(const ClientContext& ctx, const std::string& user) {
  if (!user.empty()) return UserResource(user);
  SUBMARINE_ASSIGN_OR_RETURN(std::string me, ctx.api->CurrentUsername());
  return "users/" + me;
}

// The set fields of `f` into `user`, their proto names into `mask` when given.
void ApplyUserFields(const UserFields& f, pb::User* user, google::protobuf::FieldMask* mask) {
  auto changed = [mask](const char* path) {
    if (mask != nullptr) mask->add_paths(path);
  };
  if (f.display_name) {
    user->set_display_name(*f.display_name);
    changed("display_name");
  }
  if (f.email) {
    user->set_email(*f.email);
    changed("email");
  }
  if (f.disabled) {
    user->set_disabled(*f.disabled);
    changed("disabled");
  }
  if (f.admin) {
    user->set_admin(*f.admin);
    changed("admin");
  }
}

std::string FormatUnix(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

}  // namespace

// ---- Names and values.

std::string UserResource(const std::string& name_or_id) { return WithPrefix("users/", name_or_id); }
std::string TeamResource(const std::string& name_or_id) { return WithPrefix("teams/", name_or_id); }
std::string ProjectResource(const std::string& name_or_id) {
  return WithPrefix("projects/", name_or_id);
}

absl::StatusOr<std::string> ParseSubject(const std::string& text, const std::string& field) {
  auto id_ok = [](const std::string& s, size_t from) {
    return s.size() > from && s.find('/', from) == std::string::npos;
  };
  if (text == "allUsers") return text;
  if ((text.rfind("users/", 0) == 0 && id_ok(text, 6)) ||
      (text.rfind("teams/", 0) == 0 && id_ok(text, 6))) {
    return text;
  }
  return InvalidField(field, absl::StrCat("\"", text,
                                          "\" is not a subject: use users/NAME, teams/NAME or "
                                          "allUsers"));
}

absl::StatusOr<std::string> ParseOwner(const std::string& text) {
  if (text.empty()) return InvalidField("owner", "give a user (users/NAME) or team (teams/NAME)");
  if (text.find('/') == std::string::npos) return "users/" + text;
  if (text.rfind("users/", 0) == 0 || text.rfind("teams/", 0) == 0) return text;
  return InvalidField("owner", absl::StrCat("\"", text, "\" is neither users/NAME nor teams/NAME"));
}

absl::StatusOr<std::string> ParseRole(const std::string& text) {
  std::string t = Lower(text);
  if (t == "viewer") return std::string("VIEWER");
  if (t == "editor") return std::string("EDITOR");
  if (t == "admin" || t == "project_admin") return std::string("PROJECT_ADMIN");
  return InvalidField("role",
                      absl::StrCat("unknown role \"", text, "\"; use viewer, editor or admin"));
}

absl::StatusOr<std::string> ParsePermission(const std::string& text) {
  std::string t = Lower(text);
  if (t == "read" || t == "write" || t == "admin") {
    std::string upper = t;
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return upper;
  }
  return InvalidField("permission",
                      absl::StrCat("unknown permission \"", text, "\"; use read, write or admin"));
}

absl::StatusOr<std::string> ParseTeamRole(const std::string& text) {
  std::string t = Lower(text);
  if (t == "member") return std::string("MEMBER");
  if (t == "maintainer") return std::string("MAINTAINER");
  if (t == "owner") return std::string("OWNER");
  return InvalidField(
      "role", absl::StrCat("unknown team role \"", text, "\"; use member, maintainer or owner"));
}

absl::StatusOr<int64_t> ParseDurationSeconds(const std::string& text, const std::string& field) {
  auto bad = [&] {
    return InvalidField(field,
                        absl::StrCat("\"", text, "\" is not a duration (e.g. 90d, 12h, 30m, 45s)"));
  };
  if (text.empty()) return bad();
  int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'd':
      unit = 86400;
      digits.pop_back();
      break;
    case 'h':
      unit = 3600;
      digits.pop_back();
      break;
    case 'm':
      unit = 60;
      digits.pop_back();
      break;
    case 's':
      digits.pop_back();
      break;
    default:
      break;
  }
  if (digits.empty() || digits.size() > 12 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  return std::stoll(digits) * unit;
}

absl::StatusOr<std::string> ParseTimeBound(const std::string& text, int64_t now_unix,
                                           const std::string& field) {
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
  }
  auto ago = ParseDurationSeconds(text, field);
  if (!ago.ok()) {
    return InvalidField(field, absl::StrCat("\"", text,
                                            "\" is neither an RFC 3339 time nor a duration ago "
                                            "(e.g. 24h)"));
  }
  return FormatUnix(now_unix - *ago);
}

// ---- Session.

absl::Status Login(const ClientContext& ctx, const LoginOptions& options) {
  std::string username = options.username;
  if (username.empty()) {
    if (options.password_stdin) {
      return InvalidField("username", "give the username with -u when using --password-stdin");
    }
    SUBMARINE_ASSIGN_OR_RETURN(username, PromptLine("Username: "));
    if (username.empty()) return InvalidField("username", "the username is empty");
  }
  std::string password;
  if (options.password_stdin) {
    SUBMARINE_ASSIGN_OR_RETURN(password, ReadSecretLine(*ctx.in, "password"));
  } else {
    SUBMARINE_ASSIGN_OR_RETURN(password, PromptSecret("Password: ", "--password-stdin"));
  }
  SUBMARINE_ASSIGN_OR_RETURN(Credentials credentials, ctx.api->Login(username, password));
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Logged in to " << credentials.gateway << " as " << credentials.username
             << "; credentials stored in " << ctx.api->TokenSource() << "\n";
  } else {
    nlohmann::ordered_json value = {
        {"gateway", credentials.gateway},
        {"username", credentials.username},
        {"expiresAt", credentials.expires_at > 0 ? FormatUnix(credentials.expires_at) : ""},
        {"credentialsFile", ctx.api->TokenSource()}};
    *ctx.out << FormatValue(value, ctx.format);
  }
  return absl::OkStatus();
}

absl::Status Logout(const ClientContext& ctx) {
  bool env_token = ctx.api->TokenSource() == "SUBMARINE_TOKEN";
  absl::Status st = ctx.api->Logout();
  if (env_token) {
    // An API token is not a session: it stays valid until it expires or is revoked.
    *ctx.out << "Removed the stored credentials; SUBMARINE_TOKEN is still set and stays valid "
                "until revoked (`submarine token revoke`)\n";
  } else {
    *ctx.out << "Logged out of " << ctx.api->server() << "\n";
  }
  return st;
}

absl::Status WhoAmI(const ClientContext& ctx) {
  SUBMARINE_ASSIGN_OR_RETURN(pb::User me, ctx.api->Call<pb::User>(Identity("GetCurrentUser"),
                                                                  pb::GetCurrentUserRequest()));
  if (ctx.format != OutputFormat::kTable) {
    Print(ctx, {me}, UserColumns(), true);
    return absl::OkStatus();
  }
  *ctx.out << RenderTable({"FIELD", "VALUE"}, {{"user", LastSegmentOf(me.name())},
                                               {"display name", me.display_name()},
                                               {"admin", me.admin() ? "yes" : "no"},
                                               {"teams", Joined(me.teams())},
                                               {"server", ctx.api->server()},
                                               {"token from", ctx.api->TokenSource()}});
  return absl::OkStatus();
}

// ---- Users.

absl::Status ListUsers(const ClientContext& ctx, const std::string& filter) {
  pb::ListUsersRequest request;
  request.set_filter(filter);
  SUBMARINE_ASSIGN_OR_RETURN(
      auto users, ListAll(ctx, Identity("ListUsers"), request, &pb::ListUsersResponse::users));
  Print(ctx, users, UserColumns(), false);
  return absl::OkStatus();
}

absl::Status GetUser(const ClientContext& ctx, const std::string& name) {
  pb::GetUserRequest request;
  request.set_name(UserResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(pb::User user, ctx.api->Call<pb::User>(Identity("GetUser"), request));
  Print(ctx, {user}, UserColumns(), true);
  return absl::OkStatus();
}

absl::Status CreateUser(const ClientContext& ctx, const std::string& user_id,
                        const UserFields& fields, bool password_stdin) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string password,
                             NewPassword(ctx, password_stdin, "Password for " + user_id));
  pb::CreateUserRequest request;
  request.set_user_id(user_id);
  ApplyUserFields(fields, request.mutable_user(), nullptr);
  request.set_password(password);
  SUBMARINE_ASSIGN_OR_RETURN(pb::User user,
                             ctx.api->Call<pb::User>(Identity("CreateUser"), request));
  Print(ctx, {user}, UserColumns(), true);
  return absl::OkStatus();
}

absl::Status UpdateUser(const ClientContext& ctx, const std::string& name,
                        const UserFields& fields) {
  pb::UpdateUserRequest request;
  ApplyUserFields(fields, request.mutable_user(), request.mutable_update_mask());
  if (request.update_mask().paths().empty()) {
    return InvalidField("user",
                        "nothing to change: give --display-name, --email, --disabled or "
                        "--admin");
  }
  request.mutable_user()->set_name(UserResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(pb::User updated,
                             ctx.api->Call<pb::User>(Identity("UpdateUser"), request));
  Print(ctx, {updated}, UserColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteUser(const ClientContext& ctx, const std::string& name) {
  pb::DeleteUserRequest request;
  request.set_name(UserResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(
      auto answer, ctx.api->Call<pb::DeleteUserResponse>(Identity("DeleteUser"), request));
  PrintDeleted(ctx, request.name(), answer);
  return absl::OkStatus();
}

absl::Status SetPassword(const ClientContext& ctx, const std::string& name, bool password_stdin) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string target, UserOrSelf(ctx, name));
  SUBMARINE_ASSIGN_OR_RETURN(std::string me, ctx.api->CurrentUsername());
  pb::SetPasswordRequest request;
  request.set_name(target);
  if (target == "users/" + me) {
    std::string current;
    if (password_stdin) {
      SUBMARINE_ASSIGN_OR_RETURN(current, ReadSecretLine(*ctx.in, "current password"));
    } else {
      SUBMARINE_ASSIGN_OR_RETURN(current, PromptSecret("Current password: ", "--password-stdin"));
    }
    request.set_current_password(current);
  }
  SUBMARINE_ASSIGN_OR_RETURN(std::string password,
                             NewPassword(ctx, password_stdin, "New password"));
  request.set_password(password);
  SUBMARINE_RETURN_IF_ERROR(
      ctx.api->Call<pb::SetPasswordResponse>(Identity("SetPassword"), request).status());
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Changed the password of " << target
             << (target == "users/" + me ? "; log in again with `submarine login`" : "") << "\n";
  } else {
    *ctx.out << FormatValue({{"name", target}}, ctx.format);
  }
  return absl::OkStatus();
}

// ---- Teams.

absl::Status ListTeams(const ClientContext& ctx) {
  SUBMARINE_ASSIGN_OR_RETURN(auto teams, ListAll(ctx, Identity("ListTeams"), pb::ListTeamsRequest(),
                                                 &pb::ListTeamsResponse::teams));
  Print(ctx, teams, TeamColumns(), false);
  return absl::OkStatus();
}

absl::Status GetTeam(const ClientContext& ctx, const std::string& name) {
  pb::GetTeamRequest request;
  request.set_name(TeamResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(pb::Team team, ctx.api->Call<pb::Team>(Identity("GetTeam"), request));
  Print(ctx, {team}, TeamColumns(), true);
  return absl::OkStatus();
}

absl::Status CreateTeam(const ClientContext& ctx, const std::string& team_id,
                        const std::string& display_name, const std::string& description) {
  pb::CreateTeamRequest request;
  request.set_team_id(team_id);
  request.mutable_team()->set_display_name(display_name);
  request.mutable_team()->set_description(description);
  SUBMARINE_ASSIGN_OR_RETURN(pb::Team created,
                             ctx.api->Call<pb::Team>(Identity("CreateTeam"), request));
  Print(ctx, {created}, TeamColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteTeam(const ClientContext& ctx, const std::string& name) {
  pb::DeleteTeamRequest request;
  request.set_name(TeamResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(
      auto answer, ctx.api->Call<pb::DeleteTeamResponse>(Identity("DeleteTeam"), request));
  PrintDeleted(ctx, request.name(), answer);
  return absl::OkStatus();
}

absl::Status AddTeamMember(const ClientContext& ctx, const std::string& team,
                           const std::string& user, const std::string& role) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string team_role, ParseTeamRole(role.empty() ? "member" : role));
  pb::SetTeamMemberRequest request;
  request.set_team(TeamResource(team));
  request.mutable_member()->set_user(UserResource(user));
  pb::TeamRole parsed_role = pb::TEAM_ROLE_UNSPECIFIED;
  pb::TeamRole_Parse(team_role, &parsed_role);
  request.mutable_member()->set_role(parsed_role);
  SUBMARINE_ASSIGN_OR_RETURN(pb::TeamMember added,
                             ctx.api->Call<pb::TeamMember>(Identity("SetTeamMember"), request));
  Print(ctx, {added}, MemberColumns(), true);
  return absl::OkStatus();
}

absl::Status RemoveTeamMember(const ClientContext& ctx, const std::string& team,
                              const std::string& user) {
  pb::RemoveTeamMemberRequest request;
  request.set_team(TeamResource(team));
  request.set_user(UserResource(user));
  SUBMARINE_ASSIGN_OR_RETURN(auto answer, ctx.api->Call<pb::RemoveTeamMemberResponse>(
                                              Identity("RemoveTeamMember"), request));
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Removed " << request.user() << " from " << request.team() << "\n";
  } else {
    PrintDeleted(ctx, absl::StrCat(request.team(), "/members/", request.user()), answer);
  }
  return absl::OkStatus();
}

absl::Status ListTeamMembers(const ClientContext& ctx, const std::string& team) {
  pb::ListTeamMembersRequest request;
  request.set_team(TeamResource(team));
  SUBMARINE_ASSIGN_OR_RETURN(auto answer, ctx.api->Call<pb::ListTeamMembersResponse>(
                                              Identity("ListTeamMembers"), request));
  Print(ctx, Items(answer.members()), MemberColumns(), false);
  return absl::OkStatus();
}

// ---- Projects and role bindings.

absl::Status ListProjects(const ClientContext& ctx) {
  SUBMARINE_ASSIGN_OR_RETURN(auto projects,
                             ListAll(ctx, Identity("ListProjects"), pb::ListProjectsRequest(),
                                     &pb::ListProjectsResponse::projects));
  Print(ctx, projects, ProjectColumns(), false);
  return absl::OkStatus();
}

absl::Status GetProject(const ClientContext& ctx, const std::string& name) {
  pb::GetProjectRequest request;
  request.set_name(ProjectResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(pb::Project project,
                             ctx.api->Call<pb::Project>(Identity("GetProject"), request));
  Print(ctx, {project}, ProjectColumns(), true);
  return absl::OkStatus();
}

// Sets the fields given in `f` on `project` (and names them in `mask`, if any).
absl::Status ApplyProjectFields(const ProjectFields& f, pb::Project* project,
                                google::protobuf::FieldMask* mask) {
  auto changed = [mask](const char* path) {
    if (mask != nullptr) mask->add_paths(path);
  };
  if (f.display_name) {
    project->set_display_name(*f.display_name);
    changed("display_name");
  }
  if (f.description) {
    project->set_description(*f.description);
    changed("description");
  }
  if (f.owner) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string o, ParseSubject(*f.owner, "owner"));
    if (o == "allUsers") return InvalidField("owner", "a project is owned by a user or a team");
    project->set_owner(o);
    changed("owner");
  }
  if (f.default_cluster) {
    project->set_default_compute_cluster(*f.default_cluster);
    changed("default_compute_cluster");
  }
  return absl::OkStatus();
}

absl::Status CreateProject(const ClientContext& ctx, const std::string& project_id,
                           const ProjectFields& fields) {
  pb::CreateProjectRequest request;
  request.set_project_id(project_id);
  SUBMARINE_RETURN_IF_ERROR(ApplyProjectFields(fields, request.mutable_project(), nullptr));
  SUBMARINE_ASSIGN_OR_RETURN(pb::Project created,
                             ctx.api->Call<pb::Project>(Identity("CreateProject"), request));
  Print(ctx, {created}, ProjectColumns(), true);
  return absl::OkStatus();
}

absl::Status UpdateProject(const ClientContext& ctx, const std::string& name,
                           const ProjectFields& fields) {
  pb::UpdateProjectRequest request;
  SUBMARINE_RETURN_IF_ERROR(
      ApplyProjectFields(fields, request.mutable_project(), request.mutable_update_mask()));
  if (request.update_mask().paths().empty()) {
    return InvalidField("project",
                        "nothing to change: give --display-name, --description, --owner or "
                        "--default-cluster");
  }
  request.mutable_project()->set_name(ProjectResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(pb::Project updated,
                             ctx.api->Call<pb::Project>(Identity("UpdateProject"), request));
  Print(ctx, {updated}, ProjectColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteProject(const ClientContext& ctx, const std::string& name) {
  pb::DeleteProjectRequest request;
  request.set_name(ProjectResource(name));
  SUBMARINE_ASSIGN_OR_RETURN(
      auto answer, ctx.api->Call<pb::DeleteProjectResponse>(Identity("DeleteProject"), request));
  PrintDeleted(ctx, request.name(), answer);
  return absl::OkStatus();
}

absl::Status BindRole(const ClientContext& ctx, const std::string& project,
                      const std::string& subject, const std::string& role) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string s, ParseSubject(subject, "subject"));
  SUBMARINE_ASSIGN_OR_RETURN(std::string r, ParseRole(role));
  pb::CreateRoleBindingRequest request;
  request.set_parent(ProjectResource(project));
  request.mutable_role_binding()->set_subject(s);
  pb::Role parsed_role = pb::ROLE_UNSPECIFIED;
  pb::Role_Parse(r, &parsed_role);
  request.mutable_role_binding()->set_role(parsed_role);
  SUBMARINE_ASSIGN_OR_RETURN(pb::RoleBinding binding,
                             ctx.api->Call<pb::RoleBinding>(Access("CreateRoleBinding"), request));
  Print(ctx, {binding}, BindingColumns(), true);
  return absl::OkStatus();
}

absl::Status UnbindRole(const ClientContext& ctx, const std::string& project,
                        const std::string& binding_or_subject) {
  std::string parent = ProjectResource(project);
  pb::DeleteRoleBindingRequest request;
  if (binding_or_subject.find("/roleBindings/") != std::string::npos) {
    request.set_name(binding_or_subject);
  } else if (ParseSubject(binding_or_subject, "subject").ok()) {
    pb::ListRoleBindingsRequest list;
    list.set_parent(parent);
    SUBMARINE_ASSIGN_OR_RETURN(
        auto answer, ctx.api->Call<pb::ListRoleBindingsResponse>(Access("ListRoleBindings"), list));
    for (const auto& b : answer.role_bindings()) {
      if (b.subject() == binding_or_subject) request.set_name(b.name());
    }
    if (request.name().empty()) {
      return MakeError(absl::StatusCode::kNotFound, "ROLE_BINDING_NOT_FOUND",
                       absl::StrCat(binding_or_subject, " has no role binding on ", parent),
                       {{"subject", binding_or_subject}, {"project", parent}});
    }
  } else {
    request.set_name(absl::StrCat(parent, "/roleBindings/", binding_or_subject));
  }
  SUBMARINE_ASSIGN_OR_RETURN(auto answer, ctx.api->Call<pb::DeleteRoleBindingResponse>(
                                              Access("DeleteRoleBinding"), request));
  PrintDeleted(ctx, request.name(), answer);
  return absl::OkStatus();
}

absl::Status ListRoleBindings(const ClientContext& ctx, const std::string& project) {
  pb::ListRoleBindingsRequest request;
  request.set_parent(ProjectResource(project));
  SUBMARINE_ASSIGN_OR_RETURN(auto answer, ctx.api->Call<pb::ListRoleBindingsResponse>(
                                              Access("ListRoleBindings"), request));
  Print(ctx, Items(answer.role_bindings()), BindingColumns(), false);
  return absl::OkStatus();
}

// ---- Grants.

absl::Status ListGrants(const ClientContext& ctx, const std::string& resource) {
  pb::ListGrantsRequest request;
  request.set_resource(resource);
  SUBMARINE_ASSIGN_OR_RETURN(auto answer,
                             ctx.api->Call<pb::ListGrantsResponse>(Access("ListGrants"), request));
  Print(ctx, Items(answer.grants()), GrantColumns(), false);
  return absl::OkStatus();
}

absl::Status CreateGrant(const ClientContext& ctx, const std::string& resource,
                         const std::string& subject, const std::string& permission) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string s, ParseSubject(subject, "subject"));
  SUBMARINE_ASSIGN_OR_RETURN(std::string p, ParsePermission(permission));
  pb::CreateGrantRequest request;
  request.mutable_grant()->set_resource(resource);
  request.mutable_grant()->set_subject(s);
  pb::Permission parsed_permission = pb::PERMISSION_UNSPECIFIED;
  pb::Permission_Parse(p, &parsed_permission);
  request.mutable_grant()->set_permission(parsed_permission);
  SUBMARINE_ASSIGN_OR_RETURN(pb::Grant grant,
                             ctx.api->Call<pb::Grant>(Access("CreateGrant"), request));
  Print(ctx, {grant}, GrantColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteGrant(const ClientContext& ctx, const std::string& name) {
  pb::DeleteGrantRequest request;
  request.set_name(WithPrefix("grants/", name));
  SUBMARINE_ASSIGN_OR_RETURN(
      auto answer, ctx.api->Call<pb::DeleteGrantResponse>(Access("DeleteGrant"), request));
  PrintDeleted(ctx, request.name(), answer);
  return absl::OkStatus();
}

// ---- Quotas and leases.

namespace {

void PrintUsage(const ClientContext& ctx, const pb::Usage& usage) {
  if (ctx.format != OutputFormat::kTable) {
    *ctx.out << FormatValue(MessageToJson(usage), ctx.format);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const ResourceKind& kind : ResourceKinds()) {
    rows.push_back({kind.long_label,
                    (usage.used().*kind.has)() ? absl::StrCat((usage.used().*kind.value)()) : "0",
                    (usage.limits().*kind.has)() ? absl::StrCat((usage.limits().*kind.value)())
                                                 : "unlimited"});
  }
  *ctx.out << "Usage of " << usage.owner() << " (" << usage.active_leases() << " active leases)\n"
           << RenderTable({"RESOURCE", "USED", "LIMIT"}, rows);
}

}  // namespace

absl::Status GetQuota(const ClientContext& ctx, const std::string& owner) {
  pb::GetUsageRequest request;
  SUBMARINE_ASSIGN_OR_RETURN(*request.mutable_owner(), ParseOwner(owner));
  SUBMARINE_ASSIGN_OR_RETURN(pb::Usage usage, ctx.api->Call<pb::Usage>(Quota("GetUsage"), request));
  if (usage.owner().empty()) usage.set_owner(request.owner());
  PrintUsage(ctx, usage);
  return absl::OkStatus();
}

absl::Status SetQuota(const ClientContext& ctx, const std::string& owner,
                      const QuotaLimits& limits) {
  pb::SetQuotaRequest request;
  SUBMARINE_ASSIGN_OR_RETURN(*request.mutable_owner(), ParseOwner(owner));
  pb::Resources* r = request.mutable_limits();
  if (limits.cpu_millis) r->set_cpu_millis(*limits.cpu_millis);
  if (limits.memory_mib) r->set_memory_mib(*limits.memory_mib);
  if (limits.gpus) r->set_gpus(*limits.gpus);
  if (limits.experiments) r->set_experiments(*limits.experiments);
  if (limits.notebooks) r->set_notebooks(*limits.notebooks);
  if (limits.serving_replicas) r->set_serving_replicas(*limits.serving_replicas);
  if (r->ByteSizeLong() == 0) {
    return InvalidField("limits",
                        "give at least one limit (--cpu-millis, --memory-mib, --gpus, "
                        "--experiments, --notebooks, --serving-replicas)");
  }
  // SetQuota answers with the owner's usage under the new limits.
  SUBMARINE_ASSIGN_OR_RETURN(pb::Usage usage, ctx.api->Call<pb::Usage>(Quota("SetQuota"), request));
  if (usage.owner().empty()) usage.set_owner(request.owner());
  PrintUsage(ctx, usage);
  return absl::OkStatus();
}

absl::Status ListLeases(const ClientContext& ctx, const std::string& owner) {
  pb::ListLeasesRequest request;
  if (!owner.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(*request.mutable_owner(), ParseOwner(owner));
  }
  SUBMARINE_ASSIGN_OR_RETURN(auto answer,
                             ctx.api->Call<pb::ListLeasesResponse>(Quota("ListLeases"), request));
  Print(ctx, Items(answer.leases()), LeaseColumns(), false);
  return absl::OkStatus();
}

// ---- API tokens.

absl::Status ListTokens(const ClientContext& ctx, const std::string& user) {
  pb::ListApiTokensRequest request;
  SUBMARINE_ASSIGN_OR_RETURN(*request.mutable_parent(), UserOrSelf(ctx, user));
  SUBMARINE_ASSIGN_OR_RETURN(
      auto answer, ctx.api->Call<pb::ListApiTokensResponse>(Identity("ListApiTokens"), request));
  Print(ctx, Items(answer.tokens()), TokenColumns(), false);
  return absl::OkStatus();
}

absl::Status CreateToken(const ClientContext& ctx, const std::string& user,
                         const std::string& display_name, const std::string& ttl,
                         const std::string& project) {
  pb::CreateApiTokenRequest request;
  SUBMARINE_ASSIGN_OR_RETURN(*request.mutable_parent(), UserOrSelf(ctx, user));
  request.set_display_name(display_name);
  if (!project.empty()) request.set_scope(ProjectResource(project));
  if (!ttl.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(int64_t ttl_seconds, ParseDurationSeconds(ttl, "ttl"));
    request.set_ttl_seconds(ttl_seconds);
  }
  SUBMARINE_ASSIGN_OR_RETURN(
      auto answer, ctx.api->Call<pb::CreateApiTokenResponse>(Identity("CreateApiToken"), request));
  if (ctx.format != OutputFormat::kTable) {
    *ctx.out << FormatValue(MessageToJson(answer), ctx.format);
    return absl::OkStatus();
  }
  std::string expires = TimeText(answer.token().expire_time());
  *ctx.out << "Created " << answer.token().name() << " (expires "
           << (expires.empty() ? "never" : expires) << ").\n"
           << "Copy the token now; it cannot be shown again. Use it as SUBMARINE_TOKEN or\n"
           << "\"Authorization: Bearer <token>\":\n"
           << answer.secret() << "\n";
  return absl::OkStatus();
}

absl::Status RevokeToken(const ClientContext& ctx, const std::string& user,
                         const std::string& name) {
  pb::RevokeApiTokenRequest request;
  request.set_name(name);
  if (name.find("/tokens/") == std::string::npos) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string owner, UserOrSelf(ctx, user));
    request.set_name(absl::StrCat(owner, "/tokens/", name));
  }
  SUBMARINE_ASSIGN_OR_RETURN(pb::ApiToken token,
                             ctx.api->Call<pb::ApiToken>(Identity("RevokeApiToken"), request));
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Revoked " << request.name() << "\n";
  } else {
    Print(ctx, {token}, TokenColumns(), true);
  }
  return absl::OkStatus();
}

// ---- Credentials.

namespace {

// "users/{u}" (the caller when `user` is empty), or "platform".
absl::StatusOr<std::string> CredentialOwner(const ClientContext& ctx, const std::string& user) {
  if (user == kPlatformCredentials) return std::string(kPlatformCredentials);
  return UserOrSelf(ctx, user);
}

}  // namespace

absl::Status ListCredentials(const ClientContext& ctx, const std::string& user) {
  pb::ListCredentialsRequest request;
  SUBMARINE_ASSIGN_OR_RETURN(*request.mutable_parent(), CredentialOwner(ctx, user));
  SUBMARINE_ASSIGN_OR_RETURN(auto answer, ctx.api->Call<pb::ListCredentialsResponse>(
                                              Credential("ListCredentials"), request));
  Print(ctx, Items(answer.credentials()), CredentialColumns(), false);
  return absl::OkStatus();
}

absl::Status CreateCredential(const ClientContext& ctx, const std::string& user,
                              const std::string& credential_id, const CredentialInput& input) {
  pb::CreateCredentialRequest request;
  SUBMARINE_ASSIGN_OR_RETURN(*request.mutable_parent(), CredentialOwner(ctx, user));
  std::string secret;
  if (input.secret_file == "-") {
    std::stringstream ss;
    ss << ctx.in->rdbuf();
    secret = ss.str();
  } else if (!input.secret_file.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(secret, config::ReadFile(input.secret_file));
  } else {
    SUBMARINE_ASSIGN_OR_RETURN(secret, PromptSecret("Secret: ", "--secret-file -"));
  }
  if (secret.empty()) return InvalidField("secret", "the secret is empty");
  if (secret.size() > kMaxSecretBytes) {
    return InvalidField("secret", "the secret is larger than 64 KiB");
  }
  request.set_credential_id(credential_id);
  request.mutable_credential()->set_type(input.type);
  request.mutable_credential()->set_description(input.description);
  request.set_secret(secret);  // bytes: base64 in the JSON body
  SUBMARINE_ASSIGN_OR_RETURN(pb::Credential created, ctx.api->Call<pb::Credential>(
                                                         Credential("CreateCredential"), request));
  Print(ctx, {created}, CredentialColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteCredential(const ClientContext& ctx, const std::string& user,
                              const std::string& name) {
  pb::DeleteCredentialRequest request;
  request.set_name(name);
  if (name.find("/credentials/") == std::string::npos) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string owner, CredentialOwner(ctx, user));
    request.set_name(absl::StrCat(owner, "/credentials/", name));
  }
  SUBMARINE_ASSIGN_OR_RETURN(auto answer, ctx.api->Call<pb::DeleteCredentialResponse>(
                                              Credential("DeleteCredential"), request));
  PrintDeleted(ctx, request.name(), answer);
  return absl::OkStatus();
}

// ---- Audit.

namespace {

// ParseTimeBound() into a Timestamp.
absl::Status SetTimeBound(const std::string& text, int64_t now_unix, const std::string& field,
                          google::protobuf::Timestamp* into) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string time, ParseTimeBound(text, now_unix, field));
  if (!google::protobuf::util::TimeUtil::FromString(time, into)) {
    return InvalidField(field, absl::StrCat("\"", text, "\" is out of range"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ListAuditEvents(const ClientContext& ctx, const AuditQuery& query, int64_t now_unix) {
  pb::ListAuditEventsRequest request;
  if (!query.principal.empty()) {
    request.set_principal(query.principal.find('/') == std::string::npos
                              ? UserResource(query.principal)
                              : query.principal);
  }
  request.set_resource(query.resource);
  if (!query.since.empty()) {
    SUBMARINE_RETURN_IF_ERROR(
        SetTimeBound(query.since, now_unix, "since", request.mutable_start_time()));
  }
  if (!query.until.empty()) {
    SUBMARINE_RETURN_IF_ERROR(
        SetTimeBound(query.until, now_unix, "until", request.mutable_end_time()));
  }
  if (query.limit < 0) return InvalidField("limit", "the limit cannot be negative");
  if (query.limit > 0) request.set_page_size(std::min(query.limit, 1000));
  SUBMARINE_ASSIGN_OR_RETURN(
      auto events, ListAll(ctx, Audit("ListAuditEvents"), request,
                           &pb::ListAuditEventsResponse::events, static_cast<size_t>(query.limit)));
  Print(ctx, events, AuditColumns(), false);
  return absl::OkStatus();
}

}  // namespace submarine::cli
