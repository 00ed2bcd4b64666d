#include "clients/cli/permission_commands.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/cli/http_client.h"
#include "clients/cli/secret_input.h"
#include "common/auth/crypto.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

using nlohmann::json;

// Secrets larger than this are refused locally (the server's limit for credentials is 64 KiB).
constexpr size_t kMaxSecretBytes = 64 * 1024;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string WithPrefix(const std::string& prefix, const std::string& name_or_id) {
  return name_or_id.rfind(prefix, 0) == 0 ? name_or_id : prefix + name_or_id;
}

// "?a=1&b=2" from the pairs whose value is not empty.
std::string Query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string query;
  for (const auto& [key, value] : params) {
    if (value.empty()) continue;
    absl::StrAppend(&query, query.empty() ? "?" : "&", key, "=", UrlEncode(value));
  }
  return query;
}

// Every item of a paginated List: follows nextPageToken until the end or `limit` items (0: no
// limit).
absl::StatusOr<std::vector<json>> ListAll(const ClientContext& ctx, const std::string& path,
                                          std::vector<std::pair<std::string, std::string>> params,
                                          const std::string& items_key, size_t limit = 0) {
  std::vector<json> items;
  std::string page_token;
  do {
    auto page_params = params;
    page_params.emplace_back("pageToken", page_token);
    SUBMARINE_ASSIGN_OR_RETURN(json page, ctx.api->Call("GET", path + Query(page_params)));
    if (page.contains(items_key) && page[items_key].is_array()) {
      for (auto& item : page[items_key]) {
        if (limit > 0 && items.size() >= limit) return items;
        items.push_back(std::move(item));
      }
    }
    page_token = TextField(page, "nextPageToken");
  } while (!page_token.empty() && (limit == 0 || items.size() < limit));
  return items;
}

std::vector<json> ArrayField(const json& object, const std::string& key) {
  std::vector<json> items;
  if (object.is_object() && object.contains(key) && object[key].is_array()) {
    for (const auto& item : object[key]) items.push_back(item);
  }
  return items;
}

Column Col(std::string header, std::function<std::string(const json&)> cell) {
  return Column{std::move(header), std::move(cell)};
}
Column FieldCol(std::string header, std::string key) {
  return Col(std::move(header), [key](const json& j) { return TextField(j, key); });
}
Column NameCol(std::string header, std::string key = "name") {
  return Col(std::move(header), [key](const json& j) { return LastSegmentOf(TextField(j, key)); });
}
Column TimeCol(std::string header, std::string key) {
  return Col(std::move(header), [key](const json& j) { return ShortTimeOf(TextField(j, key)); });
}
Column FlagCol(std::string header, std::string key) {
  return Col(std::move(header), [key](const json& j) {
    return j.is_object() && j.contains(key) && j[key] == true ? "yes" : "";
  });
}

const std::vector<Column>& UserColumns() {
  static const auto* columns = new std::vector<Column>{
      NameCol("USERNAME"),
      FieldCol("DISPLAY NAME", "displayName"),
      FieldCol("EMAIL", "email"),
      FlagCol("ADMIN", "admin"),
      FlagCol("DISABLED", "disabled"),
      Col("TEAMS", [](const json& j) {
        std::string out;
        for (const auto& t : ArrayField(j, "teams")) {
          absl::StrAppend(&out, out.empty() ? "" : ",", LastSegmentOf(t.get<std::string>()));
        }
        return out;
      })};
  return *columns;
}

const std::vector<Column>& TeamColumns() {
  static const auto* columns = new std::vector<Column>{
      NameCol("TEAM"), FieldCol("DISPLAY NAME", "displayName"),
      Col("MEMBERS",
          [](const json& j) {
            return j.contains("memberCount") ? TextField(j, "memberCount") : "0";
          }),
      FieldCol("DESCRIPTION", "description"), TimeCol("CREATED", "createTime")};
  return *columns;
}

const std::vector<Column>& ProjectColumns() {
  static const auto* columns = new std::vector<Column>{
      NameCol("PROJECT"), FieldCol("DISPLAY NAME", "displayName"), FieldCol("OWNER", "owner"),
      FieldCol("DESCRIPTION", "description"), TimeCol("CREATED", "createTime")};
  return *columns;
}

std::string RoleWord(const std::string& role) {
  if (role == "PROJECT_ADMIN") return "admin";
  return Lower(role);
}

const std::vector<Column>& BindingColumns() {
  static const auto* columns = new std::vector<Column>{
      NameCol("ID"), FieldCol("SUBJECT", "subject"),
      Col("ROLE", [](const json& j) { return RoleWord(TextField(j, "role")); }),
      TimeCol("CREATED", "createTime")};
  return *columns;
}

const std::vector<Column>& GrantColumns() {
  static const auto* columns = new std::vector<Column>{
      NameCol("ID"),
      FieldCol("RESOURCE", "resource"),
      FieldCol("SUBJECT", "subject"),
      Col("PERMISSION", [](const json& j) { return Lower(TextField(j, "permission")); }),
      FieldCol("CREATOR", "creator"),
      TimeCol("CREATED", "createTime")};
  return *columns;
}

std::string ResourcesText(const json& resources) {
  static const std::vector<std::pair<std::string, std::string>> kNames = {
      {"cpuMillis", "cpu"},           {"memoryMib", "mem"},       {"gpus", "gpu"},
      {"experiments", "experiments"}, {"notebooks", "notebooks"}, {"servingReplicas", "serving"}};
  std::string out;
  for (const auto& [key, label] : kNames) {
    std::string value = TextField(resources, key);
    if (!value.empty()) absl::StrAppend(&out, out.empty() ? "" : ",", label, "=", value);
  }
  return out;
}

const std::vector<Column>& LeaseColumns() {
  static const auto* columns = new std::vector<Column>{
      NameCol("LEASE"),
      FieldCol("OWNER", "owner"),
      FieldCol("PROJECT", "project"),
      FieldCol("HOLDER", "holder"),
      Col("RESOURCES",
          [](const json& j) {
            return j.contains("resources") ? ResourcesText(j["resources"]) : std::string();
          }),
      TimeCol("EXPIRES", "expireTime")};
  return *columns;
}

const std::vector<Column>& TokenColumns() {
  static const auto* columns = new std::vector<Column>{
      NameCol("ID"), FieldCol("DISPLAY NAME", "displayName"), TimeCol("CREATED", "createTime"),
      Col("EXPIRES",
          [](const json& j) {
            std::string t = ShortTimeOf(TextField(j, "expireTime"));
            return t.empty() ? std::string("never") : t;
          }),
      TimeCol("REVOKED", "revokeTime")};
  return *columns;
}

const std::vector<Column>& CredentialColumns() {
  static const auto* columns = new std::vector<Column>{NameCol("ID"), FieldCol("TYPE", "type"),
                                                       FieldCol("DESCRIPTION", "description"),
                                                       TimeCol("UPDATED", "updateTime")};
  return *columns;
}

const std::vector<Column>& AuditColumns() {
  static const auto* columns = new std::vector<Column>{
      TimeCol("TIME", "occurTime"), FieldCol("PRINCIPAL", "principal"), FieldCol("TYPE", "type"),
      FieldCol("RESOURCE", "resource"), FieldCol("REQUEST ID", "requestId")};
  return *columns;
}

void Print(const ClientContext& ctx, const std::vector<json>& items,
           const std::vector<Column>& columns, bool single) {
  *ctx.out << FormatResources(items, columns, ctx.format, single);
}

// After a delete: a line for people, the deleted name for scripts.
void PrintDeleted(const ClientContext& ctx, const std::string& name, const json& answer = {}) {
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Deleted " << name << "\n";
    return;
  }
  json value = answer.is_object() && !answer.empty() ? answer : json{{"name", name}};
  *ctx.out << (ctx.format == OutputFormat::kJson ? value.dump(2) + "\n" : JsonToYaml(value));
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

json UserBody(const UserFields& f, std::string* mask) {
  json user = json::object();
  std::vector<std::string> paths;
  auto set = [&](const char* key, const json& value) {
    user[key] = value;
    paths.push_back(key);
  };
  if (f.display_name) set("displayName", *f.display_name);
  if (f.email) set("email", *f.email);
  if (f.disabled) set("disabled", *f.disabled);
  if (f.admin) set("admin", *f.admin);
  if (mask != nullptr) {
    for (const auto& p : paths) absl::StrAppend(mask, mask->empty() ? "" : ",", p);
  }
  return user;
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
    json value = {{"gateway", credentials.gateway},
                  {"username", credentials.username},
                  {"expiresAt",
                   credentials.expires_at > 0 ? FormatUnix(credentials.expires_at) : std::string()},
                  {"credentialsFile", ctx.api->TokenSource()}};
    *ctx.out << (ctx.format == OutputFormat::kJson ? value.dump(2) + "\n" : JsonToYaml(value));
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
  SUBMARINE_ASSIGN_OR_RETURN(json me, ctx.api->Call("GET", "/v1/users:me"));
  if (ctx.format != OutputFormat::kTable) {
    Print(ctx, {me}, UserColumns(), true);
    return absl::OkStatus();
  }
  std::string teams = JoinedField(me, "teams");
  *ctx.out << RenderTable({"FIELD", "VALUE"}, {{"user", LastSegmentOf(TextField(me, "name"))},
                                               {"display name", TextField(me, "displayName")},
                                               {"admin", me.value("admin", false) ? "yes" : "no"},
                                               {"teams", teams},
                                               {"server", ctx.api->server()},
                                               {"token from", ctx.api->TokenSource()}});
  return absl::OkStatus();
}

// ---- Users.

absl::Status ListUsers(const ClientContext& ctx, const std::string& filter) {
  SUBMARINE_ASSIGN_OR_RETURN(auto users, ListAll(ctx, "/v1/users", {{"filter", filter}}, "users"));
  Print(ctx, users, UserColumns(), false);
  return absl::OkStatus();
}

absl::Status GetUser(const ClientContext& ctx, const std::string& name) {
  SUBMARINE_ASSIGN_OR_RETURN(json user, ctx.api->Call("GET", "/v1/" + UserResource(name)));
  Print(ctx, {user}, UserColumns(), true);
  return absl::OkStatus();
}

absl::Status CreateUser(const ClientContext& ctx, const std::string& user_id,
                        const UserFields& fields, bool password_stdin) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string password,
                             NewPassword(ctx, password_stdin, "Password for " + user_id));
  json body = {{"userId", user_id}, {"user", UserBody(fields, nullptr)}, {"password", password}};
  SUBMARINE_ASSIGN_OR_RETURN(json user, ctx.api->Call("POST", "/v1/users", body));
  Print(ctx, {user}, UserColumns(), true);
  return absl::OkStatus();
}

absl::Status UpdateUser(const ClientContext& ctx, const std::string& name,
                        const UserFields& fields) {
  std::string mask;
  json user = UserBody(fields, &mask);
  if (mask.empty()) {
    return InvalidField("user",
                        "nothing to change: give --display-name, --email, --disabled or "
                        "--admin");
  }
  user["name"] = UserResource(name);
  SUBMARINE_ASSIGN_OR_RETURN(
      json updated,
      ctx.api->Call("PATCH", "/v1/" + UserResource(name) + Query({{"updateMask", mask}}), user));
  Print(ctx, {updated}, UserColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteUser(const ClientContext& ctx, const std::string& name) {
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("DELETE", "/v1/" + UserResource(name)));
  PrintDeleted(ctx, UserResource(name), answer);
  return absl::OkStatus();
}

absl::Status SetPassword(const ClientContext& ctx, const std::string& name, bool password_stdin) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string target, UserOrSelf(ctx, name));
  SUBMARINE_ASSIGN_OR_RETURN(std::string me, ctx.api->CurrentUsername());
  json body = json::object();
  if (target == "users/" + me) {
    std::string current;
    if (password_stdin) {
      SUBMARINE_ASSIGN_OR_RETURN(current, ReadSecretLine(*ctx.in, "current password"));
    } else {
      SUBMARINE_ASSIGN_OR_RETURN(current, PromptSecret("Current password: ", "--password-stdin"));
    }
    body["currentPassword"] = current;
  }
  SUBMARINE_ASSIGN_OR_RETURN(std::string password,
                             NewPassword(ctx, password_stdin, "New password"));
  body["password"] = password;
  SUBMARINE_ASSIGN_OR_RETURN(json answer,
                             ctx.api->Call("POST", "/v1/" + target + ":setPassword", body));
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Changed the password of " << target
             << (target == "users/" + me ? "; log in again with `submarine login`" : "") << "\n";
  } else {
    json value = {{"name", target}};
    *ctx.out << (ctx.format == OutputFormat::kJson ? value.dump(2) + "\n" : JsonToYaml(value));
  }
  return absl::OkStatus();
}

// ---- Teams.

absl::Status ListTeams(const ClientContext& ctx) {
  SUBMARINE_ASSIGN_OR_RETURN(auto teams, ListAll(ctx, "/v1/teams", {}, "teams"));
  Print(ctx, teams, TeamColumns(), false);
  return absl::OkStatus();
}

absl::Status GetTeam(const ClientContext& ctx, const std::string& name) {
  SUBMARINE_ASSIGN_OR_RETURN(json team, ctx.api->Call("GET", "/v1/" + TeamResource(name)));
  Print(ctx, {team}, TeamColumns(), true);
  return absl::OkStatus();
}

absl::Status CreateTeam(const ClientContext& ctx, const std::string& team_id,
                        const std::string& display_name, const std::string& description) {
  json team = json::object();
  if (!display_name.empty()) team["displayName"] = display_name;
  if (!description.empty()) team["description"] = description;
  SUBMARINE_ASSIGN_OR_RETURN(
      json created, ctx.api->Call("POST", "/v1/teams", json{{"teamId", team_id}, {"team", team}}));
  Print(ctx, {created}, TeamColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteTeam(const ClientContext& ctx, const std::string& name) {
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("DELETE", "/v1/" + TeamResource(name)));
  PrintDeleted(ctx, TeamResource(name), answer);
  return absl::OkStatus();
}

const std::vector<Column>& MemberColumns() {
  static const auto* columns = new std::vector<Column>{
      NameCol("USER", "user"),
      Col("ROLE", [](const json& j) { return Lower(TextField(j, "role")); })};
  return *columns;
}

absl::Status AddTeamMember(const ClientContext& ctx, const std::string& team,
                           const std::string& user, const std::string& role) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string team_role, ParseTeamRole(role.empty() ? "member" : role));
  json member = {{"user", UserResource(user)}, {"role", team_role}};
  SUBMARINE_ASSIGN_OR_RETURN(
      json added, ctx.api->Call("POST", "/v1/" + TeamResource(team) + "/members", member));
  Print(ctx, {added}, MemberColumns(), true);
  return absl::OkStatus();
}

absl::Status RemoveTeamMember(const ClientContext& ctx, const std::string& team,
                              const std::string& user) {
  SUBMARINE_ASSIGN_OR_RETURN(
      json answer, ctx.api->Call("DELETE", absl::StrCat("/v1/", TeamResource(team), "/members/",
                                                        UserResource(user))));
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Removed " << UserResource(user) << " from " << TeamResource(team) << "\n";
  } else {
    PrintDeleted(ctx, absl::StrCat(TeamResource(team), "/members/", UserResource(user)), answer);
  }
  return absl::OkStatus();
}

absl::Status ListTeamMembers(const ClientContext& ctx, const std::string& team) {
  SUBMARINE_ASSIGN_OR_RETURN(json answer,
                             ctx.api->Call("GET", "/v1/" + TeamResource(team) + "/members"));
  Print(ctx, ArrayField(answer, "members"), MemberColumns(), false);
  return absl::OkStatus();
}

// ---- Projects and role bindings.

absl::Status ListProjects(const ClientContext& ctx) {
  SUBMARINE_ASSIGN_OR_RETURN(auto projects, ListAll(ctx, "/v1/projects", {}, "projects"));
  Print(ctx, projects, ProjectColumns(), false);
  return absl::OkStatus();
}

absl::Status GetProject(const ClientContext& ctx, const std::string& name) {
  SUBMARINE_ASSIGN_OR_RETURN(json project, ctx.api->Call("GET", "/v1/" + ProjectResource(name)));
  Print(ctx, {project}, ProjectColumns(), true);
  return absl::OkStatus();
}

absl::Status CreateProject(const ClientContext& ctx, const std::string& project_id,
                           const std::string& display_name, const std::string& description,
                           const std::string& owner) {
  json project = json::object();
  if (!display_name.empty()) project["displayName"] = display_name;
  if (!description.empty()) project["description"] = description;
  if (!owner.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string o, ParseSubject(owner, "owner"));
    if (o == "allUsers") return InvalidField("owner", "a project is owned by a user or a team");
    project["owner"] = o;
  }
  SUBMARINE_ASSIGN_OR_RETURN(
      json created,
      ctx.api->Call("POST", "/v1/projects", json{{"projectId", project_id}, {"project", project}}));
  Print(ctx, {created}, ProjectColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteProject(const ClientContext& ctx, const std::string& name) {
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("DELETE", "/v1/" + ProjectResource(name)));
  PrintDeleted(ctx, ProjectResource(name), answer);
  return absl::OkStatus();
}

absl::Status BindRole(const ClientContext& ctx, const std::string& project,
                      const std::string& subject, const std::string& role) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string s, ParseSubject(subject, "subject"));
  SUBMARINE_ASSIGN_OR_RETURN(std::string r, ParseRole(role));
  SUBMARINE_ASSIGN_OR_RETURN(
      json binding, ctx.api->Call("POST", "/v1/" + ProjectResource(project) + "/roleBindings",
                                  json{{"subject", s}, {"role", r}}));
  Print(ctx, {binding}, BindingColumns(), true);
  return absl::OkStatus();
}

absl::Status UnbindRole(const ClientContext& ctx, const std::string& project,
                        const std::string& binding_or_subject) {
  std::string parent = ProjectResource(project);
  std::string name;
  if (binding_or_subject.find("/roleBindings/") != std::string::npos) {
    name = binding_or_subject;
  } else if (ParseSubject(binding_or_subject, "subject").ok()) {
    SUBMARINE_ASSIGN_OR_RETURN(json answer,
                               ctx.api->Call("GET", "/v1/" + parent + "/roleBindings"));
    for (const auto& b : ArrayField(answer, "roleBindings")) {
      if (TextField(b, "subject") == binding_or_subject) name = TextField(b, "name");
    }
    if (name.empty()) {
      return MakeError(absl::StatusCode::kNotFound, "ROLE_BINDING_NOT_FOUND",
                       absl::StrCat(binding_or_subject, " has no role binding on ", parent),
                       {{"subject", binding_or_subject}, {"project", parent}});
    }
  } else {
    name = absl::StrCat(parent, "/roleBindings/", binding_or_subject);
  }
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("DELETE", "/v1/" + name));
  PrintDeleted(ctx, name, answer);
  return absl::OkStatus();
}

absl::Status ListRoleBindings(const ClientContext& ctx, const std::string& project) {
  SUBMARINE_ASSIGN_OR_RETURN(
      json answer, ctx.api->Call("GET", "/v1/" + ProjectResource(project) + "/roleBindings"));
  Print(ctx, ArrayField(answer, "roleBindings"), BindingColumns(), false);
  return absl::OkStatus();
}

// ---- Grants.

absl::Status ListGrants(const ClientContext& ctx, const std::string& resource) {
  SUBMARINE_ASSIGN_OR_RETURN(json answer,
                             ctx.api->Call("GET", "/v1/grants" + Query({{"resource", resource}})));
  Print(ctx, ArrayField(answer, "grants"), GrantColumns(), false);
  return absl::OkStatus();
}

absl::Status CreateGrant(const ClientContext& ctx, const std::string& resource,
                         const std::string& subject, const std::string& permission) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string s, ParseSubject(subject, "subject"));
  SUBMARINE_ASSIGN_OR_RETURN(std::string p, ParsePermission(permission));
  SUBMARINE_ASSIGN_OR_RETURN(
      json grant, ctx.api->Call("POST", "/v1/grants",
                                json{{"resource", resource}, {"subject", s}, {"permission", p}}));
  Print(ctx, {grant}, GrantColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteGrant(const ClientContext& ctx, const std::string& name) {
  std::string full = WithPrefix("grants/", name);
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("DELETE", "/v1/" + full));
  PrintDeleted(ctx, full, answer);
  return absl::OkStatus();
}

// ---- Quotas and leases.

absl::Status GetQuota(const ClientContext& ctx, const std::string& owner) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string o, ParseOwner(owner));
  SUBMARINE_ASSIGN_OR_RETURN(json usage, ctx.api->Call("GET", "/v1/" + o + "/usage"));
  if (ctx.format != OutputFormat::kTable) {
    Print(ctx, {usage}, {}, true);
    return absl::OkStatus();
  }
  static const std::vector<std::pair<std::string, std::string>> kRows = {
      {"cpuMillis", "cpu (millicores)"},
      {"memoryMib", "memory (MiB)"},
      {"gpus", "gpus"},
      {"experiments", "experiments"},
      {"notebooks", "notebooks"},
      {"servingReplicas", "serving replicas"}};
  json limits = usage.contains("limits") ? usage["limits"] : json::object();
  json used = usage.contains("used") ? usage["used"] : json::object();
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, label] : kRows) {
    std::string limit = TextField(limits, key);
    std::string in_use = TextField(used, key);
    rows.push_back({label, in_use.empty() ? "0" : in_use, limit.empty() ? "unlimited" : limit});
  }
  *ctx.out << "Usage of " << o << " ("
           << (usage.contains("activeLeases") ? TextField(usage, "activeLeases") : std::string("0"))
           << " active leases)\n"
           << RenderTable({"RESOURCE", "USED", "LIMIT"}, rows);
  return absl::OkStatus();
}

absl::Status SetQuota(const ClientContext& ctx, const std::string& owner,
                      const QuotaLimits& limits) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string o, ParseOwner(owner));
  json body = json::object();
  auto put = [&body](const char* key, const std::optional<int64_t>& v) {
    if (v) body[key] = *v;
  };
  put("cpuMillis", limits.cpu_millis);
  put("memoryMib", limits.memory_mib);
  put("gpus", limits.gpus);
  put("experiments", limits.experiments);
  put("notebooks", limits.notebooks);
  put("servingReplicas", limits.serving_replicas);
  if (body.empty()) {
    return InvalidField("limits",
                        "give at least one limit (--cpu-millis, --memory-mib, --gpus, "
                        "--experiments, --notebooks, --serving-replicas)");
  }
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("PATCH", "/v1/" + o + "/quota", body));
  (void)answer;
  return GetQuota(ctx, o);
}

absl::Status ListLeases(const ClientContext& ctx, const std::string& owner) {
  std::string o;
  if (!owner.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(o, ParseOwner(owner));
  }
  SUBMARINE_ASSIGN_OR_RETURN(json answer,
                             ctx.api->Call("GET", "/v1/leases" + Query({{"owner", o}})));
  Print(ctx, ArrayField(answer, "leases"), LeaseColumns(), false);
  return absl::OkStatus();
}

// ---- API tokens.

absl::Status ListTokens(const ClientContext& ctx, const std::string& user) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string owner, UserOrSelf(ctx, user));
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("GET", "/v1/" + owner + "/tokens"));
  Print(ctx, ArrayField(answer, "tokens"), TokenColumns(), false);
  return absl::OkStatus();
}

absl::Status CreateToken(const ClientContext& ctx, const std::string& user,
                         const std::string& display_name, const std::string& ttl) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string owner, UserOrSelf(ctx, user));
  int64_t ttl_seconds = 0;
  if (!ttl.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(ttl_seconds, ParseDurationSeconds(ttl, "ttl"));
  }
  json body = {{"displayName", display_name}, {"ttlSeconds", ttl_seconds}};
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("POST", "/v1/" + owner + "/tokens", body));
  if (ctx.format != OutputFormat::kTable) {
    Print(ctx, {answer}, {}, true);
    return absl::OkStatus();
  }
  json token = answer.contains("token") ? answer["token"] : json::object();
  std::string expires = ShortTimeOf(TextField(token, "expireTime"));
  *ctx.out << "Created " << TextField(token, "name") << " (expires "
           << (expires.empty() ? "never" : expires) << ").\n"
           << "Copy the token now; it cannot be shown again. Use it as SUBMARINE_TOKEN or\n"
           << "\"Authorization: Bearer <token>\":\n"
           << TextField(answer, "secret") << "\n";
  return absl::OkStatus();
}

absl::Status RevokeToken(const ClientContext& ctx, const std::string& user,
                         const std::string& name) {
  std::string full = name;
  if (name.find("/tokens/") == std::string::npos) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string owner, UserOrSelf(ctx, user));
    full = absl::StrCat(owner, "/tokens/", name);
  }
  SUBMARINE_ASSIGN_OR_RETURN(json token, ctx.api->Call("DELETE", "/v1/" + full));
  if (ctx.format == OutputFormat::kTable) {
    *ctx.out << "Revoked " << full << "\n";
  } else {
    Print(ctx, {token}, TokenColumns(), true);
  }
  return absl::OkStatus();
}

// ---- Credentials.

absl::Status ListCredentials(const ClientContext& ctx, const std::string& user) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string owner, UserOrSelf(ctx, user));
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("GET", "/v1/" + owner + "/credentials"));
  Print(ctx, ArrayField(answer, "credentials"), CredentialColumns(), false);
  return absl::OkStatus();
}

absl::Status CreateCredential(const ClientContext& ctx, const std::string& user,
                              const std::string& credential_id, const CredentialInput& input) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string owner, UserOrSelf(ctx, user));
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
  json credential = {{"type", input.type}};
  if (!input.description.empty()) credential["description"] = input.description;
  json body = {{"credentialId", credential_id},
               {"credential", credential},
               {"secret", auth::Base64Encode(secret)}};
  SUBMARINE_ASSIGN_OR_RETURN(json created,
                             ctx.api->Call("POST", "/v1/" + owner + "/credentials", body));
  Print(ctx, {created}, CredentialColumns(), true);
  return absl::OkStatus();
}

absl::Status DeleteCredential(const ClientContext& ctx, const std::string& user,
                              const std::string& name) {
  std::string full = name;
  if (name.find("/credentials/") == std::string::npos) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string owner, UserOrSelf(ctx, user));
    full = absl::StrCat(owner, "/credentials/", name);
  }
  SUBMARINE_ASSIGN_OR_RETURN(json answer, ctx.api->Call("DELETE", "/v1/" + full));
  PrintDeleted(ctx, full, answer);
  return absl::OkStatus();
}

// ---- Audit.

absl::Status ListAuditEvents(const ClientContext& ctx, const AuditQuery& query, int64_t now_unix) {
  std::vector<std::pair<std::string, std::string>> params;
  if (!query.principal.empty()) {
    params.emplace_back("principal", query.principal.find('/') == std::string::npos
                                         ? UserResource(query.principal)
                                         : query.principal);
  }
  params.emplace_back("resource", query.resource);
  if (!query.since.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string t, ParseTimeBound(query.since, now_unix, "since"));
    params.emplace_back("startTime", t);
  }
  if (!query.until.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string t, ParseTimeBound(query.until, now_unix, "until"));
    params.emplace_back("endTime", t);
  }
  if (query.limit < 0) return InvalidField("limit", "the limit cannot be negative");
  if (query.limit > 0) params.emplace_back("pageSize", std::to_string(std::min(query.limit, 1000)));
  SUBMARINE_ASSIGN_OR_RETURN(auto events, ListAll(ctx, "/v1/auditEvents", params, "events",
                                                  static_cast<size_t>(query.limit)));
  Print(ctx, events, AuditColumns(), false);
  return absl::OkStatus();
}

}  // namespace submarine::cli
