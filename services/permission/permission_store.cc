#include "services/permission/permission_store.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "common/db/pool.h"

namespace submarine::permission {
namespace {

using google::protobuf::util::TimeUtil;

// A $n parameter of Unix microseconds as a timestamptz, and a timestamptz column as micros.
#define TS(n) "(TIMESTAMPTZ 'epoch' + $" #n "::bigint * INTERVAL '1 microsecond')"
#define MICROS(col) "(EXTRACT(EPOCH FROM " col ") * 1000000)::bigint"

struct Statement {
  const char* name;
  const char* sql;
};

const Statement kStatements[] = {
    // users
    {"perm_user_find",
     "SELECT username, seq, display_name, email, disabled, admin, password_hash, etag, " MICROS(
         "create_time") ", " MICROS("update_time") " FROM users WHERE username = $1"},
    {"perm_user_find_for_update",
     "SELECT username, seq, display_name, email, disabled, admin, password_hash, etag, " MICROS(
         "create_time") ", " MICROS("update_time") " FROM users WHERE username = $1 FOR UPDATE"},
    {"perm_user_insert",
     "INSERT INTO users (username, display_name, email, disabled, admin, password_hash, etag, "
     "create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, " TS(8) ", " TS(9) ")"},
    {"perm_user_update",
     "UPDATE users SET display_name = $2, email = $3, disabled = $4, admin = $5, etag = $6, "
     "update_time = " TS(7) " WHERE username = $1"},
    {"perm_user_set_password",
     "UPDATE users SET password_hash = $2, update_time = " TS(3) " WHERE username = $1"},
    {"perm_user_delete", "DELETE FROM users WHERE username = $1"},
    {"perm_user_count", "SELECT count(*) FROM users"},
    {"perm_user_other_admins",
     "SELECT count(*) FROM users WHERE admin AND NOT disabled AND username <> $1"},
    {"perm_user_flags",
     "SELECT username, admin, disabled FROM users WHERE username = ANY($1::text[])"},
    {"perm_memberships",
     "SELECT username, team_id, role FROM team_members WHERE username = ANY($1::text[]) "
     "ORDER BY username, team_id"},
    {"perm_share_team",
     "SELECT 1 FROM team_members a JOIN team_members b USING (team_id) "
     "WHERE a.username = $1 AND b.username = $2 LIMIT 1"},
    // teams
    {"perm_team_find",
     "SELECT t.team_id, t.display_name, t.description, " MICROS("t.create_time") ", "
     "(SELECT count(*) FROM team_members m WHERE m.team_id = t.team_id) "
     "FROM teams t WHERE t.team_id = $1"},
    {"perm_team_find_for_update",
     "SELECT t.team_id, t.display_name, t.description, " MICROS("t.create_time") ", "
     "(SELECT count(*) FROM team_members m WHERE m.team_id = t.team_id) "
     "FROM teams t WHERE t.team_id = $1 FOR UPDATE"},
    {"perm_team_insert",
     "INSERT INTO teams (team_id, display_name, description, create_time, update_time) "
     "VALUES ($1, $2, $3, " TS(4) ", " TS(4) ")"},
    {"perm_team_delete", "DELETE FROM teams WHERE team_id = $1"},
    {"perm_team_list",
     "SELECT t.team_id, t.display_name, t.description, " MICROS("t.create_time") ", "
     "(SELECT count(*) FROM team_members m WHERE m.team_id = t.team_id), t.seq "
     "FROM teams t WHERE t.seq > $1 ORDER BY t.seq LIMIT $2"},
    {"perm_member_role", "SELECT role FROM team_members WHERE team_id = $1 AND username = $2"},
    {"perm_member_upsert",
     "INSERT INTO team_members (team_id, username, role) VALUES ($1, $2, $3) "
     "ON CONFLICT (team_id, username) DO UPDATE SET role = EXCLUDED.role"},
    {"perm_member_remove", "DELETE FROM team_members WHERE team_id = $1 AND username = $2"},
    {"perm_member_list",
     "SELECT username, role FROM team_members WHERE team_id = $1 ORDER BY username"},
    {"perm_member_owners", "SELECT count(*) FROM team_members WHERE team_id = $1 AND role = 3"},
    // projects
    {"perm_project_find",
     "SELECT project_id, seq, display_name, description, owner, etag, " MICROS(
         "create_time") ", " MICROS("update_time") " FROM projects WHERE project_id = $1"},
    {"perm_project_find_for_update",
     "SELECT project_id, seq, display_name, description, owner, etag, " MICROS(
         "create_time") ", " MICROS("update_time")
     " FROM projects WHERE project_id = $1 FOR UPDATE"},
    {"perm_project_insert",
     "INSERT INTO projects (project_id, display_name, description, owner, etag, create_time, "
     "update_time) VALUES ($1, $2, $3, $4, $5, " TS(6) ", " TS(7) ")"},
    {"perm_project_update",
     "UPDATE projects SET display_name = $2, description = $3, owner = $4, etag = $5, "
     "update_time = " TS(6) " WHERE project_id = $1"},
    {"perm_project_delete", "DELETE FROM projects WHERE project_id = $1"},
    {"perm_project_list_all",
     "SELECT project_id, seq, display_name, description, owner, etag, " MICROS(
         "create_time") ", " MICROS("update_time")
     " FROM projects WHERE seq > $1 ORDER BY seq LIMIT $2"},
    {"perm_project_list_visible",
     "SELECT p.project_id, p.seq, p.display_name, p.description, p.owner, p.etag, " MICROS(
         "p.create_time") ", " MICROS("p.update_time")
     " FROM projects p WHERE p.seq > $1 AND (p.owner = ANY($3::text[]) OR EXISTS (SELECT 1 "
     "FROM role_bindings b WHERE b.project_id = p.project_id AND b.subject = ANY($4::text[]))) "
     "ORDER BY p.seq LIMIT $2"},
    {"perm_project_owners",
     "SELECT project_id, owner FROM projects WHERE project_id = ANY($1::text[])"},
    // role bindings
    {"perm_binding_upsert",
     "INSERT INTO role_bindings (binding_id, project_id, subject, role, create_time) "
     "VALUES ($1, $2, $3, $4, " TS(5) ") ON CONFLICT (project_id, subject) DO UPDATE SET "
     "role = EXCLUDED.role RETURNING binding_id, " MICROS("create_time") ", "
     "(xmax <> 0) AS replaced"},
    {"perm_binding_list",
     "SELECT binding_id, project_id, subject, role, " MICROS("create_time")
     " FROM role_bindings WHERE project_id = $1 ORDER BY subject"},
    {"perm_binding_find",
     "SELECT binding_id, project_id, subject, role, " MICROS("create_time")
     " FROM role_bindings WHERE binding_id = $1"},
    {"perm_binding_delete", "DELETE FROM role_bindings WHERE binding_id = $1"},
    {"perm_binding_for",
     "SELECT binding_id, project_id, subject, role, " MICROS("create_time")
     " FROM role_bindings WHERE project_id = ANY($1::text[]) AND subject = ANY($2::text[])"},
    {"perm_binding_delete_subject", "DELETE FROM role_bindings WHERE subject = $1"},
    {"perm_grant_delete_subject", "DELETE FROM grants WHERE subject = $1"},
    // grants
    {"perm_grant_upsert",
     "INSERT INTO grants (grant_id, project_id, resource, subject, permission, creator, "
     "create_time) VALUES ($1, $2, $3, $4, $5, $6, " TS(7) ") ON CONFLICT (resource, subject) "
     "DO UPDATE SET permission = EXCLUDED.permission, creator = EXCLUDED.creator "
     "RETURNING grant_id, " MICROS("create_time") ", (xmax <> 0) AS replaced"},
    {"perm_grant_list",
     "SELECT grant_id, project_id, resource, subject, permission, creator, " MICROS(
         "create_time") " FROM grants WHERE resource = $1 ORDER BY subject"},
    {"perm_grant_list_all",
     "SELECT grant_id, project_id, resource, subject, permission, creator, " MICROS(
         "create_time") " FROM grants ORDER BY resource, subject"},
    {"perm_grant_find",
     "SELECT grant_id, project_id, resource, subject, permission, creator, " MICROS(
         "create_time") " FROM grants WHERE grant_id = $1"},
    {"perm_grant_delete", "DELETE FROM grants WHERE grant_id = $1"},
    {"perm_grant_for",
     "SELECT grant_id, project_id, resource, subject, permission, creator, " MICROS(
         "create_time")
     " FROM grants WHERE resource = ANY($1::text[]) AND subject = ANY($2::text[])"},
    // The prefix is matched with starts_with (no LIKE pattern characters to escape) and the
    // remainder must be one path segment.
    {"perm_granted_in",
     "SELECT DISTINCT resource FROM grants WHERE starts_with(resource, $1) "
     "AND strpos(substr(resource, length($1) + 1), '/') = 0 AND subject = ANY($2::text[]) "
     "AND permission >= $3 ORDER BY resource"},
    // tokens
    {"perm_api_token_insert",
     "INSERT INTO api_tokens (token_id, username, display_name, token_hash, create_time, "
     "expire_time) VALUES ($1, $2, $3, $4, " TS(5) ", CASE WHEN $6::bigint = 0 THEN NULL ELSE "
     TS(6) " END)"},
    {"perm_api_token_list",
     "SELECT token_id, username, display_name, token_hash, " MICROS("create_time") ", "
     "COALESCE(" MICROS("expire_time") ", 0), COALESCE(" MICROS("revoke_time") ", 0) "
     "FROM api_tokens WHERE username = $1 ORDER BY create_time DESC, token_id"},
    {"perm_api_token_find",
     "SELECT token_id, username, display_name, token_hash, " MICROS("create_time") ", "
     "COALESCE(" MICROS("expire_time") ", 0), COALESCE(" MICROS("revoke_time") ", 0) "
     "FROM api_tokens WHERE token_id = $1"},
    {"perm_api_token_find_for_update",
     "SELECT token_id, username, display_name, token_hash, " MICROS("create_time") ", "
     "COALESCE(" MICROS("expire_time") ", 0), COALESCE(" MICROS("revoke_time") ", 0) "
     "FROM api_tokens WHERE token_id = $1 FOR UPDATE"},
    {"perm_api_token_revoke",
     "UPDATE api_tokens SET revoke_time = " TS(2) " WHERE token_id = $1 AND revoke_time IS NULL"},
    {"perm_refresh_insert",
     "INSERT INTO refresh_tokens (token_hash, username, create_time, expire_time) "
     "VALUES ($1, $2, " TS(3) ", " TS(4) ")"},
    {"perm_refresh_take",
     "DELETE FROM refresh_tokens WHERE token_hash = $1 RETURNING username, " MICROS(
         "expire_time")},
    {"perm_refresh_delete_user", "DELETE FROM refresh_tokens WHERE username = $1"},
    {"perm_revoked_insert",
     "INSERT INTO revoked_tokens (token_id, username, expire_time, revoke_time) VALUES ($1, $2, "
     "CASE WHEN $3::bigint = 0 THEN NULL ELSE " TS(3) " END, " TS(4) ") "
     "ON CONFLICT (token_id) DO NOTHING"},
    {"perm_not_before_raise",
     "INSERT INTO token_not_before (username, not_before) VALUES ($1, " TS(2) ") "
     "ON CONFLICT (username) DO UPDATE SET not_before = "
     "GREATEST(token_not_before.not_before, EXCLUDED.not_before)"},
    {"perm_not_before_get",
     "SELECT " MICROS("not_before") " FROM token_not_before WHERE username = $1"},
    // auth state
    {"perm_revoked_list",
     "SELECT token_id, COALESCE(" MICROS("expire_time") ", 0) FROM revoked_tokens "
     "WHERE expire_time IS NULL OR expire_time > " TS(1) " ORDER BY token_id"},
    {"perm_blocked_list",
     "SELECT username FROM users WHERE disabled UNION SELECT n.username FROM token_not_before n "
     "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.username = n.username) ORDER BY 1"},
    {"perm_not_before_list",
     "SELECT username, " MICROS("not_before") " FROM token_not_before ORDER BY username"},
    // housekeeping
    {"perm_prune_refresh", "DELETE FROM refresh_tokens WHERE expire_time < " TS(1)},
    {"perm_prune_revoked",
     "DELETE FROM revoked_tokens WHERE expire_time IS NOT NULL AND expire_time < " TS(1)},
    {"perm_lock_bootstrap",
     "SELECT pg_advisory_xact_lock(hashtextextended('permission.bootstrap', 0))"},
    {"perm_mark_once",
     "INSERT INTO service_state (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING key"},
};

google::protobuf::Timestamp Ts(int64_t micros) {
  return TimeUtil::MicrosecondsToTimestamp(micros);
}
int64_t Micros(const google::protobuf::Timestamp& ts) {
  return TimeUtil::TimestampToMicroseconds(ts);
}

UserRow UserFromRow(const pqxx::row& r) {
  UserRow u;
  u.user.set_name("users/" + r[0].as<std::string>());
  u.seq = r[1].as<int64_t>();
  u.user.set_display_name(r[2].as<std::string>());
  u.user.set_email(r[3].as<std::string>());
  u.user.set_disabled(r[4].as<bool>());
  u.user.set_admin(r[5].as<bool>());
  u.password_hash = r[6].as<std::string>();
  u.user.set_etag(r[7].as<std::string>());
  *u.user.mutable_create_time() = Ts(r[8].as<int64_t>());
  *u.user.mutable_update_time() = Ts(r[9].as<int64_t>());
  return u;
}

v1::Team TeamFromRow(const pqxx::row& r) {
  v1::Team t;
  t.set_name("teams/" + r[0].as<std::string>());
  t.set_display_name(r[1].as<std::string>());
  t.set_description(r[2].as<std::string>());
  *t.mutable_create_time() = Ts(r[3].as<int64_t>());
  t.set_member_count(static_cast<int32_t>(r[4].as<int64_t>()));
  return t;
}

ProjectRow ProjectFromRow(const pqxx::row& r) {
  ProjectRow p;
  p.project.set_name("projects/" + r[0].as<std::string>());
  p.seq = r[1].as<int64_t>();
  p.project.set_display_name(r[2].as<std::string>());
  p.project.set_description(r[3].as<std::string>());
  p.project.set_owner(r[4].as<std::string>());
  p.project.set_etag(r[5].as<std::string>());
  *p.project.mutable_create_time() = Ts(r[6].as<int64_t>());
  *p.project.mutable_update_time() = Ts(r[7].as<int64_t>());
  return p;
}

BindingRow BindingFromRow(const pqxx::row& r) {
  BindingRow b;
  b.project_id = r[1].as<std::string>();
  b.binding.set_name(absl::StrCat("projects/", b.project_id, "/roleBindings/",
                                  r[0].as<std::string>()));
  b.binding.set_subject(r[2].as<std::string>());
  b.binding.set_role(static_cast<v1::Role>(r[3].as<int>()));
  *b.binding.mutable_create_time() = Ts(r[4].as<int64_t>());
  return b;
}

GrantRow GrantFromRow(const pqxx::row& r) {
  GrantRow g;
  g.grant.set_name("grants/" + r[0].as<std::string>());
  g.project_id = r[1].as<std::string>();
  g.grant.set_resource(r[2].as<std::string>());
  g.grant.set_subject(r[3].as<std::string>());
  g.grant.set_permission(static_cast<v1::Permission>(r[4].as<int>()));
  g.grant.set_creator(r[5].as<std::string>());
  *g.grant.mutable_create_time() = Ts(r[6].as<int64_t>());
  return g;
}

ApiTokenRow ApiTokenFromRow(const pqxx::row& r) {
  ApiTokenRow t;
  t.username = r[1].as<std::string>();
  t.token.set_name(absl::StrCat("users/", t.username, "/tokens/", r[0].as<std::string>()));
  t.token.set_display_name(r[2].as<std::string>());
  t.token_hash = r[3].as<std::string>();
  *t.token.mutable_create_time() = Ts(r[4].as<int64_t>());
  if (int64_t e = r[5].as<int64_t>()) *t.token.mutable_expire_time() = Ts(e);
  if (int64_t v = r[6].as<int64_t>()) *t.token.mutable_revoke_time() = Ts(v);
  return t;
}

int64_t Count(const pqxx::result& r) { return r[0][0].as<int64_t>(); }

}  // namespace

void PermissionStore::Prepare(pqxx::connection& conn) {
  for (const auto& s : kStatements) conn.prepare(s.name, s.sql);
}

// ---- users

std::optional<UserRow> PermissionStore::FindUser(pqxx::transaction_base& tx,
                                                 const std::string& username, bool for_update) {
  auto r = tx.exec_prepared(for_update ? "perm_user_find_for_update" : "perm_user_find", username);
  if (r.empty()) return std::nullopt;
  return UserFromRow(r[0]);
}

void PermissionStore::InsertUser(pqxx::work& tx, const std::string& username, const v1::User& u,
                                 const std::string& password_hash) {
  tx.exec_prepared("perm_user_insert", username, u.display_name(), u.email(), u.disabled(),
                   u.admin(), password_hash, u.etag(), Micros(u.create_time()),
                   Micros(u.update_time()));
}

void PermissionStore::UpdateUser(pqxx::work& tx, const std::string& username, const v1::User& u) {
  tx.exec_prepared("perm_user_update", username, u.display_name(), u.email(), u.disabled(),
                   u.admin(), u.etag(), Micros(u.update_time()));
}

void PermissionStore::SetPasswordHash(pqxx::work& tx, const std::string& username,
                                      const std::string& hash, int64_t update_micros) {
  tx.exec_prepared("perm_user_set_password", username, hash, update_micros);
}

void PermissionStore::DeleteUser(pqxx::work& tx, const std::string& username) {
  tx.exec_prepared("perm_user_delete", username);
}

std::vector<UserRow> PermissionStore::ListUsers(pqxx::transaction_base& tx,
                                                const UserListQuery& q) {
  // Assembled from fixed fragments and $n placeholders only.
  std::string sql = absl::StrCat(
      "SELECT username, seq, display_name, email, disabled, admin, password_hash, etag, ",
      MICROS("create_time"), ", ", MICROS("update_time"), " FROM users WHERE seq > $1::bigint");
  std::vector<std::string> params = {absl::StrCat(q.after_seq)};
  auto param = [&params](std::string v) {
    params.push_back(std::move(v));
    return absl::StrCat("$", params.size());
  };
  if (q.name_prefix) absl::StrAppend(&sql, " AND starts_with(username, ", param(*q.name_prefix), ")");
  if (q.name_equals) absl::StrAppend(&sql, " AND username = ", param(*q.name_equals));
  if (q.disabled) absl::StrAppend(&sql, " AND disabled = ", param(*q.disabled ? "t" : "f"), "::boolean");
  if (q.admin) absl::StrAppend(&sql, " AND admin = ", param(*q.admin ? "t" : "f"), "::boolean");
  absl::StrAppend(&sql, " ORDER BY seq LIMIT ", q.limit);
  auto r = tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params));
  std::vector<UserRow> out;
  for (const auto& row : r) out.push_back(UserFromRow(row));
  return out;
}

int64_t PermissionStore::CountUsers(pqxx::transaction_base& tx) {
  return Count(tx.exec_prepared("perm_user_count"));
}

int64_t PermissionStore::CountOtherActiveAdmins(pqxx::transaction_base& tx,
                                                const std::string& except) {
  return Count(tx.exec_prepared("perm_user_other_admins", except));
}

std::vector<SubjectFlags> PermissionStore::UserFlags(pqxx::transaction_base& tx,
                                                     const std::vector<std::string>& usernames) {
  std::vector<SubjectFlags> out;
  if (usernames.empty()) return out;
  for (const auto& r : tx.exec_prepared("perm_user_flags", db::TextArray(usernames))) {
    out.push_back({r[0].as<std::string>(), r[1].as<bool>(), r[2].as<bool>()});
  }
  return out;
}

std::vector<TeamMembership> PermissionStore::Memberships(
    pqxx::transaction_base& tx, const std::vector<std::string>& usernames) {
  std::vector<TeamMembership> out;
  if (usernames.empty()) return out;
  for (const auto& r : tx.exec_prepared("perm_memberships", db::TextArray(usernames))) {
    out.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<int>()});
  }
  return out;
}

bool PermissionStore::ShareTeam(pqxx::transaction_base& tx, const std::string& a,
                                const std::string& b) {
  return !tx.exec_prepared("perm_share_team", a, b).empty();
}

// ---- teams

std::optional<v1::Team> PermissionStore::FindTeam(pqxx::transaction_base& tx,
                                                  const std::string& team_id, bool for_update) {
  auto r = tx.exec_prepared(for_update ? "perm_team_find_for_update" : "perm_team_find", team_id);
  if (r.empty()) return std::nullopt;
  return TeamFromRow(r[0]);
}

void PermissionStore::InsertTeam(pqxx::work& tx, const std::string& team_id, const v1::Team& t) {
  tx.exec_prepared("perm_team_insert", team_id, t.display_name(), t.description(),
                   Micros(t.create_time()));
}

void PermissionStore::DeleteTeam(pqxx::work& tx, const std::string& team_id) {
  tx.exec_prepared("perm_team_delete", team_id);
}

std::vector<std::pair<int64_t, v1::Team>> PermissionStore::ListTeams(pqxx::transaction_base& tx,
                                                                     int64_t after_seq,
                                                                     int limit) {
  std::vector<std::pair<int64_t, v1::Team>> out;
  for (const auto& r : tx.exec_prepared("perm_team_list", after_seq, limit)) {
    out.emplace_back(r[5].as<int64_t>(), TeamFromRow(r));
  }
  return out;
}

std::optional<int> PermissionStore::MemberRole(pqxx::transaction_base& tx,
                                               const std::string& team_id,
                                               const std::string& username) {
  auto r = tx.exec_prepared("perm_member_role", team_id, username);
  if (r.empty()) return std::nullopt;
  return r[0][0].as<int>();
}

void PermissionStore::UpsertMember(pqxx::work& tx, const std::string& team_id,
                                   const std::string& username, int role) {
  tx.exec_prepared("perm_member_upsert", team_id, username, role);
}

bool PermissionStore::RemoveMember(pqxx::work& tx, const std::string& team_id,
                                   const std::string& username) {
  return tx.exec_prepared("perm_member_remove", team_id, username).affected_rows() > 0;
}

std::vector<v1::TeamMember> PermissionStore::ListMembers(pqxx::transaction_base& tx,
                                                         const std::string& team_id) {
  std::vector<v1::TeamMember> out;
  for (const auto& r : tx.exec_prepared("perm_member_list", team_id)) {
    v1::TeamMember m;
    m.set_user("users/" + r[0].as<std::string>());
    m.set_role(static_cast<v1::TeamRole>(r[1].as<int>()));
    out.push_back(std::move(m));
  }
  return out;
}

int64_t PermissionStore::CountOwners(pqxx::transaction_base& tx, const std::string& team_id) {
  return Count(tx.exec_prepared("perm_member_owners", team_id));
}

// ---- projects

std::optional<ProjectRow> PermissionStore::FindProject(pqxx::transaction_base& tx,
                                                       const std::string& project_id,
                                                       bool for_update) {
  auto r = tx.exec_prepared(for_update ? "perm_project_find_for_update" : "perm_project_find",
                            project_id);
  if (r.empty()) return std::nullopt;
  return ProjectFromRow(r[0]);
}

void PermissionStore::InsertProject(pqxx::work& tx, const std::string& project_id,
                                    const v1::Project& p) {
  tx.exec_prepared("perm_project_insert", project_id, p.display_name(), p.description(),
                   p.owner(), p.etag(), Micros(p.create_time()), Micros(p.update_time()));
}

void PermissionStore::UpdateProject(pqxx::work& tx, const std::string& project_id,
                                    const v1::Project& p) {
  tx.exec_prepared("perm_project_update", project_id, p.display_name(), p.description(),
                   p.owner(), p.etag(), Micros(p.update_time()));
}

void PermissionStore::DeleteProject(pqxx::work& tx, const std::string& project_id) {
  tx.exec_prepared("perm_project_delete", project_id);
}

std::vector<ProjectRow> PermissionStore::ListProjects(pqxx::transaction_base& tx, bool all,
                                                      const std::vector<std::string>& owners,
                                                      const std::vector<std::string>& subjects,
                                                      int64_t after_seq, int limit) {
  pqxx::result r = all ? tx.exec_prepared("perm_project_list_all", after_seq, limit)
                       : tx.exec_prepared("perm_project_list_visible", after_seq, limit,
                                          db::TextArray(owners), db::TextArray(subjects));
  std::vector<ProjectRow> out;
  for (const auto& row : r) out.push_back(ProjectFromRow(row));
  return out;
}

std::vector<std::pair<std::string, std::string>> PermissionStore::ProjectOwners(
    pqxx::transaction_base& tx, const std::vector<std::string>& ids) {
  std::vector<std::pair<std::string, std::string>> out;
  if (ids.empty()) return out;
  for (const auto& r : tx.exec_prepared("perm_project_owners", db::TextArray(ids))) {
    out.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  return out;
}

// ---- role bindings

v1::RoleBinding PermissionStore::UpsertBinding(pqxx::work& tx, const std::string& project_id,
                                               const std::string& binding_id,
                                               const std::string& subject, int role,
                                               int64_t create_micros, bool* replaced) {
  auto r = tx.exec_prepared("perm_binding_upsert", binding_id, project_id, subject, role,
                            create_micros);
  v1::RoleBinding b;
  b.set_name(absl::StrCat("projects/", project_id, "/roleBindings/", r[0][0].as<std::string>()));
  b.set_subject(subject);
  b.set_role(static_cast<v1::Role>(role));
  *b.mutable_create_time() = Ts(r[0][1].as<int64_t>());
  *replaced = r[0][2].as<bool>();
  return b;
}

std::vector<v1::RoleBinding> PermissionStore::ListBindings(pqxx::transaction_base& tx,
                                                           const std::string& project_id) {
  std::vector<v1::RoleBinding> out;
  for (const auto& r : tx.exec_prepared("perm_binding_list", project_id)) {
    out.push_back(BindingFromRow(r).binding);
  }
  return out;
}

std::optional<BindingRow> PermissionStore::FindBinding(pqxx::transaction_base& tx,
                                                       const std::string& binding_id) {
  auto r = tx.exec_prepared("perm_binding_find", binding_id);
  if (r.empty()) return std::nullopt;
  return BindingFromRow(r[0]);
}

void PermissionStore::DeleteBinding(pqxx::work& tx, const std::string& binding_id) {
  tx.exec_prepared("perm_binding_delete", binding_id);
}

std::vector<BindingRow> PermissionStore::BindingsFor(pqxx::transaction_base& tx,
                                                     const std::vector<std::string>& projects,
                                                     const std::vector<std::string>& subjects) {
  std::vector<BindingRow> out;
  if (projects.empty() || subjects.empty()) return out;
  for (const auto& r :
       tx.exec_prepared("perm_binding_for", db::TextArray(projects), db::TextArray(subjects))) {
    out.push_back(BindingFromRow(r));
  }
  return out;
}

int64_t PermissionStore::DeleteAccessOf(pqxx::work& tx, const std::string& subject) {
  return tx.exec_prepared("perm_binding_delete_subject", subject).affected_rows() +
         tx.exec_prepared("perm_grant_delete_subject", subject).affected_rows();
}

// ---- grants

v1::Grant PermissionStore::UpsertGrant(pqxx::work& tx, const std::string& project_id,
                                       const std::string& grant_id, const v1::Grant& g,
                                       int64_t create_micros, bool* replaced) {
  auto r = tx.exec_prepared("perm_grant_upsert", grant_id, project_id, g.resource(), g.subject(),
                            static_cast<int>(g.permission()), g.creator(), create_micros);
  v1::Grant out = g;
  out.set_name("grants/" + r[0][0].as<std::string>());
  *out.mutable_create_time() = Ts(r[0][1].as<int64_t>());
  *replaced = r[0][2].as<bool>();
  return out;
}

std::vector<v1::Grant> PermissionStore::ListGrants(pqxx::transaction_base& tx,
                                                   const std::string& resource) {
  pqxx::result r = resource.empty() ? tx.exec_prepared("perm_grant_list_all")
                                    : tx.exec_prepared("perm_grant_list", resource);
  std::vector<v1::Grant> out;
  for (const auto& row : r) out.push_back(GrantFromRow(row).grant);
  return out;
}

std::optional<GrantRow> PermissionStore::FindGrant(pqxx::transaction_base& tx,
                                                   const std::string& grant_id) {
  auto r = tx.exec_prepared("perm_grant_find", grant_id);
  if (r.empty()) return std::nullopt;
  return GrantFromRow(r[0]);
}

void PermissionStore::DeleteGrant(pqxx::work& tx, const std::string& grant_id) {
  tx.exec_prepared("perm_grant_delete", grant_id);
}

std::vector<v1::Grant> PermissionStore::GrantsFor(pqxx::transaction_base& tx,
                                                  const std::vector<std::string>& resources,
                                                  const std::vector<std::string>& subjects) {
  std::vector<v1::Grant> out;
  if (resources.empty() || subjects.empty()) return out;
  for (const auto& r :
       tx.exec_prepared("perm_grant_for", db::TextArray(resources), db::TextArray(subjects))) {
    out.push_back(GrantFromRow(r).grant);
  }
  return out;
}

std::vector<std::string> PermissionStore::GrantedIn(pqxx::transaction_base& tx,
                                                    const std::string& collection_prefix,
                                                    const std::vector<std::string>& subjects,
                                                    int permission) {
  std::vector<std::string> out;
  if (subjects.empty()) return out;
  for (const auto& r : tx.exec_prepared("perm_granted_in", collection_prefix,
                                        db::TextArray(subjects), permission)) {
    out.push_back(r[0].as<std::string>());
  }
  return out;
}

// ---- tokens

void PermissionStore::InsertApiToken(pqxx::work& tx, const ApiTokenRow& row) {
  std::string id = row.token.name().substr(row.token.name().rfind('/') + 1);
  tx.exec_prepared("perm_api_token_insert", id, row.username, row.token.display_name(),
                   row.token_hash, Micros(row.token.create_time()),
                   row.token.has_expire_time() ? Micros(row.token.expire_time()) : int64_t{0});
}

std::vector<ApiTokenRow> PermissionStore::ListApiTokens(pqxx::transaction_base& tx,
                                                        const std::string& username) {
  std::vector<ApiTokenRow> out;
  for (const auto& r : tx.exec_prepared("perm_api_token_list", username)) {
    out.push_back(ApiTokenFromRow(r));
  }
  return out;
}

std::optional<ApiTokenRow> PermissionStore::FindApiToken(pqxx::transaction_base& tx,
                                                         const std::string& token_id,
                                                         bool for_update) {
  auto r = tx.exec_prepared(
      for_update ? "perm_api_token_find_for_update" : "perm_api_token_find", token_id);
  if (r.empty()) return std::nullopt;
  return ApiTokenFromRow(r[0]);
}

void PermissionStore::RevokeApiTokenRow(pqxx::work& tx, const std::string& token_id,
                                        int64_t revoke_micros) {
  tx.exec_prepared("perm_api_token_revoke", token_id, revoke_micros);
}

void PermissionStore::InsertRefreshToken(pqxx::work& tx, const std::string& hash,
                                         const std::string& username, int64_t create_micros,
                                         int64_t expire_micros) {
  tx.exec_prepared("perm_refresh_insert", hash, username, create_micros, expire_micros);
}

std::optional<std::pair<std::string, int64_t>> PermissionStore::TakeRefreshToken(
    pqxx::work& tx, const std::string& hash) {
  auto r = tx.exec_prepared("perm_refresh_take", hash);
  if (r.empty()) return std::nullopt;
  return std::make_pair(r[0][0].as<std::string>(), r[0][1].as<int64_t>());
}

int64_t PermissionStore::DeleteRefreshTokensOf(pqxx::work& tx, const std::string& username) {
  return tx.exec_prepared("perm_refresh_delete_user", username).affected_rows();
}

void PermissionStore::InsertRevokedToken(pqxx::work& tx, const std::string& token_id,
                                         const std::string& username, int64_t expire_micros,
                                         int64_t revoke_micros) {
  tx.exec_prepared("perm_revoked_insert", token_id, username, expire_micros, revoke_micros);
}

void PermissionStore::RaiseNotBefore(pqxx::work& tx, const std::string& username,
                                     int64_t micros) {
  tx.exec_prepared("perm_not_before_raise", username, micros);
}

int64_t PermissionStore::NotBefore(pqxx::transaction_base& tx, const std::string& username) {
  auto r = tx.exec_prepared("perm_not_before_get", username);
  return r.empty() ? 0 : r[0][0].as<int64_t>();
}

// ---- auth state

std::vector<std::pair<std::string, int64_t>> PermissionStore::RevokedTokens(
    pqxx::transaction_base& tx, int64_t now_micros) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : tx.exec_prepared("perm_revoked_list", now_micros)) {
    out.emplace_back(r[0].as<std::string>(), r[1].as<int64_t>());
  }
  return out;
}

std::vector<std::string> PermissionStore::BlockedUsers(pqxx::transaction_base& tx) {
  std::vector<std::string> out;
  for (const auto& r : tx.exec_prepared("perm_blocked_list")) out.push_back(r[0].as<std::string>());
  return out;
}

std::vector<std::pair<std::string, int64_t>> PermissionStore::NotBefores(
    pqxx::transaction_base& tx) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : tx.exec_prepared("perm_not_before_list")) {
    out.emplace_back(r[0].as<std::string>(), r[1].as<int64_t>());
  }
  return out;
}

// ---- housekeeping and bootstrap

int64_t PermissionStore::PruneExpired(pqxx::work& tx, int64_t now_micros) {
  return tx.exec_prepared("perm_prune_refresh", now_micros).affected_rows() +
         tx.exec_prepared("perm_prune_revoked", now_micros).affected_rows();
}

void PermissionStore::LockBootstrap(pqxx::work& tx) { tx.exec_prepared("perm_lock_bootstrap"); }

bool PermissionStore::MarkOnce(pqxx::work& tx, const std::string& key) {
  return !tx.exec_prepared("perm_mark_once", key).empty();
}

}  // namespace submarine::permission
