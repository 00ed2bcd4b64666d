#include "services/permission/permission_store.h"

#include "absl/strings/str_cat.h"
#include "common/db/pool.h"

namespace submarine::permission {
namespace {

// users
constexpr db::Statement kUserFind{
    "permission.user_find",
    "SELECT username, seq, display_name, email, disabled, admin, password_hash, etag, create_time, "
    "update_time FROM users WHERE username = $1"};
constexpr db::Statement kUserFindForUpdate{
    "permission.user_find_for_update",
    "SELECT username, seq, display_name, email, disabled, admin, password_hash, etag, create_time, "
    "update_time FROM users WHERE username = $1 FOR UPDATE"};
constexpr db::Statement kUserInsert{
    "permission.user_insert",
    "INSERT INTO users (username, display_name, email, disabled, admin, password_hash, etag, "
    "create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"};
constexpr db::Statement kUserUpdate{
    "permission.user_update",
    "UPDATE users "
    "SET display_name = $2, email = $3, disabled = $4, admin = $5, etag = $6, update_time = $7 "
    "WHERE username = $1"};
constexpr db::Statement kUserSetPassword{
    "permission.user_set_password",
    "UPDATE users SET password_hash = $2, update_time = $3 WHERE username = $1"};
constexpr db::Statement kUserDelete{"permission.user_delete",
                                    "DELETE FROM users WHERE username = $1"};
constexpr db::Statement kUserCount{"permission.user_count", "SELECT count(*) FROM users"};
constexpr db::Statement kUserOtherAdmins{
    "permission.user_other_admins",
    "SELECT count(*) FROM users WHERE admin AND NOT disabled AND username <> $1"};
constexpr db::Statement kUserFlags{
    "permission.user_flags",
    "SELECT username, admin, disabled FROM users WHERE username = ANY($1::text[])"};
constexpr db::Statement kMemberships{
    "permission.memberships",
    "SELECT username, team_id, role FROM team_members WHERE username = ANY($1::text[]) "
    "ORDER BY username, team_id"};
constexpr db::Statement kShareTeam{
    "permission.share_team",
    "SELECT 1 FROM team_members a JOIN team_members b USING (team_id) "
    "WHERE a.username = $1 AND b.username = $2 LIMIT 1"};
// teams
constexpr db::Statement kTeamFind{
    "permission.team_find",
    "SELECT t.team_id, t.display_name, t.description, t.create_time, (SELECT count(*) "
    "FROM team_members m WHERE m.team_id = t.team_id) FROM teams t WHERE t.team_id = $1"};
constexpr db::Statement kTeamFindForUpdate{
    "permission.team_find_for_update",
    "SELECT t.team_id, t.display_name, t.description, t.create_time, (SELECT count(*) "
    "FROM team_members m WHERE m.team_id = t.team_id) FROM teams t WHERE t.team_id = $1 FOR "
    "UPDATE"};
constexpr db::Statement kTeamInsert{
    "permission.team_insert",
    "INSERT INTO teams (team_id, display_name, description, create_time, update_time) "
    "VALUES ($1, $2, $3, $4, $4)"};
constexpr db::Statement kTeamDelete{"permission.team_delete",
                                    "DELETE FROM teams WHERE team_id = $1"};
constexpr db::Statement kTeamList{
    "permission.team_list",
    "SELECT t.team_id, t.display_name, t.description, t.create_time, (SELECT count(*) "
    "FROM team_members m WHERE m.team_id = t.team_id), t.seq FROM teams t WHERE t.seq > $1 "
    "ORDER BY t.seq LIMIT $2"};
constexpr db::Statement kMemberRole{
    "permission.member_role", "SELECT role FROM team_members WHERE team_id = $1 AND username = $2"};
constexpr db::Statement kMemberUpsert{
    "permission.member_upsert",
    "INSERT INTO team_members (team_id, username, role) VALUES ($1, $2, $3) "
    "ON CONFLICT (team_id, username) DO UPDATE SET role = EXCLUDED.role"};
constexpr db::Statement kMemberRemove{
    "permission.member_remove", "DELETE FROM team_members WHERE team_id = $1 AND username = $2"};
constexpr db::Statement kMemberList{
    "permission.member_list",
    "SELECT username, role FROM team_members WHERE team_id = $1 ORDER BY username"};
constexpr db::Statement kMemberOwners{
    "permission.member_owners",
    "SELECT count(*) FROM team_members WHERE team_id = $1 AND role = 3"};
// projects
constexpr db::Statement kProjectFind{
    "permission.project_find",
    "SELECT project_id, seq, display_name, description, owner, etag, create_time, update_time, "
    "default_compute_cluster FROM projects WHERE project_id = $1"};
constexpr db::Statement kProjectFindForUpdate{
    "permission.project_find_for_update",
    "SELECT project_id, seq, display_name, description, owner, etag, create_time, update_time, "
    "default_compute_cluster FROM projects WHERE project_id = $1 FOR UPDATE"};
constexpr db::Statement kProjectInsert{
    "permission.project_insert",
    "INSERT INTO projects (project_id, display_name, description, owner, etag, create_time, "
    "update_time, default_compute_cluster) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"};
constexpr db::Statement kProjectUpdate{
    "permission.project_update",
    "UPDATE projects "
    "SET display_name = $2, description = $3, owner = $4, etag = $5, update_time = $6, "
    "default_compute_cluster = $7 WHERE project_id = $1"};
constexpr db::Statement kProjectDelete{"permission.project_delete",
                                       "DELETE FROM projects WHERE project_id = $1"};
constexpr db::Statement kProjectListAll{
    "permission.project_list_all",
    "SELECT project_id, seq, display_name, description, owner, etag, create_time, update_time, "
    "default_compute_cluster FROM projects WHERE seq > $1 ORDER BY seq LIMIT $2"};
constexpr db::Statement kProjectListVisible{
    "permission.project_list_visible",
    "SELECT p.project_id, p.seq, p.display_name, p.description, p.owner, p.etag, p.create_time, "
    "p.update_time, p.default_compute_cluster FROM projects p "
    "WHERE p.seq > $1 AND (p.owner = ANY($3::text[]) OR EXISTS (SELECT 1 FROM role_bindings b "
    "WHERE b.project_id = p.project_id AND b.subject = ANY($4::text[]))) ORDER BY p.seq LIMIT $2"};
constexpr db::Statement kProjectOwners{
    "permission.project_owners",
    "SELECT project_id, owner FROM projects WHERE project_id = ANY($1::text[])"};
// role bindings
constexpr db::Statement kBindingUpsert{
    "permission.binding_upsert",
    "INSERT INTO role_bindings (binding_id, project_id, subject, role, create_time) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, subject) DO UPDATE "
    "SET role = EXCLUDED.role RETURNING binding_id, create_time, (xmax <> 0) AS replaced"};
constexpr db::Statement kBindingList{
    "permission.binding_list",
    "SELECT binding_id, project_id, subject, role, create_time FROM role_bindings "
    "WHERE project_id = $1 ORDER BY subject"};
constexpr db::Statement kBindingFind{
    "permission.binding_find",
    "SELECT binding_id, project_id, subject, role, create_time FROM role_bindings "
    "WHERE binding_id = $1"};
constexpr db::Statement kBindingDelete{"permission.binding_delete",
                                       "DELETE FROM role_bindings WHERE binding_id = $1"};
constexpr db::Statement kBindingFor{
    "permission.binding_for",
    "SELECT binding_id, project_id, subject, role, create_time FROM role_bindings "
    "WHERE project_id = ANY($1::text[]) AND subject = ANY($2::text[])"};
constexpr db::Statement kBindingDeleteSubject{"permission.binding_delete_subject",
                                              "DELETE FROM role_bindings WHERE subject = $1"};
constexpr db::Statement kGrantDeleteSubject{"permission.grant_delete_subject",
                                            "DELETE FROM grants WHERE subject = $1"};
// grants
constexpr db::Statement kGrantUpsert{
    "permission.grant_upsert",
    "INSERT INTO grants (grant_id, project_id, resource, subject, permission, creator, "
    "create_time) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (resource, subject) DO UPDATE "
    "SET permission = EXCLUDED.permission, creator = EXCLUDED.creator "
    "RETURNING grant_id, create_time, (xmax <> 0) AS replaced"};
constexpr db::Statement kGrantList{
    "permission.grant_list",
    "SELECT grant_id, project_id, resource, subject, permission, creator, create_time FROM grants "
    "WHERE resource = $1 ORDER BY subject"};
constexpr db::Statement kGrantListAll{
    "permission.grant_list_all",
    "SELECT grant_id, project_id, resource, subject, permission, creator, create_time FROM grants "
    "ORDER BY resource, subject"};
constexpr db::Statement kGrantFind{
    "permission.grant_find",
    "SELECT grant_id, project_id, resource, subject, permission, creator, create_time FROM grants "
    "WHERE grant_id = $1"};
constexpr db::Statement kGrantDeleteUnder{
    "permission.grant_delete_under",
    "DELETE FROM grants WHERE resource = $1 OR starts_with(resource, $1 || '/') "
    "RETURNING resource, subject"};
constexpr db::Statement kGrantDelete{"permission.grant_delete",
                                     "DELETE FROM grants WHERE grant_id = $1"};
constexpr db::Statement kGrantFor{
    "permission.grant_for",
    "SELECT grant_id, project_id, resource, subject, permission, creator, create_time FROM grants "
    "WHERE resource = ANY($1::text[]) AND subject = ANY($2::text[])"};
// The prefix is matched with starts_with (no LIKE pattern characters to escape) and the
// remainder must be one path segment.
constexpr db::Statement kGrantedIn{
    "permission.granted_in",
    "SELECT DISTINCT resource FROM grants "
    "WHERE starts_with(resource, $1) AND strpos(substr(resource, length($1) + 1), '/') = 0 AND "
    "subject = ANY($2::text[]) AND permission >= $3 ORDER BY resource"};
// tokens
constexpr db::Statement kApiTokenInsert{
    "permission.api_token_insert",
    "INSERT INTO api_tokens (token_id, username, display_name, token_hash, create_time, "
    "expire_time, scope) VALUES ($1, $2, $3, $4, $5, $6, $7)"};
constexpr db::Statement kApiTokenList{
    "permission.api_token_list",
    "SELECT token_id, username, display_name, token_hash, create_time, expire_time, revoke_time, "
    "scope "
    "FROM api_tokens WHERE username = $1 ORDER BY create_time DESC, token_id"};
constexpr db::Statement kApiTokenFind{
    "permission.api_token_find",
    "SELECT token_id, username, display_name, token_hash, create_time, expire_time, revoke_time, "
    "scope "
    "FROM api_tokens WHERE token_id = $1"};
constexpr db::Statement kApiTokenFindForUpdate{
    "permission.api_token_find_for_update",
    "SELECT token_id, username, display_name, token_hash, create_time, expire_time, revoke_time, "
    "scope "
    "FROM api_tokens WHERE token_id = $1 FOR UPDATE"};
constexpr db::Statement kApiTokenRevoke{
    "permission.api_token_revoke",
    "UPDATE api_tokens SET revoke_time = $2 WHERE token_id = $1 AND revoke_time IS NULL"};
constexpr db::Statement kRefreshInsert{
    "permission.refresh_insert",
    "INSERT INTO refresh_tokens (token_hash, username, create_time, expire_time) "
    "VALUES ($1, $2, $3, $4)"};
constexpr db::Statement kRefreshTake{
    "permission.refresh_take",
    "DELETE FROM refresh_tokens WHERE token_hash = $1 RETURNING username, expire_time"};
constexpr db::Statement kRefreshDeleteUser{"permission.refresh_delete_user",
                                           "DELETE FROM refresh_tokens WHERE username = $1"};
constexpr db::Statement kRevokedInsert{
    "permission.revoked_insert",
    "INSERT INTO revoked_tokens (token_id, username, expire_time, revoke_time) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (token_id) DO NOTHING"};
constexpr db::Statement kNotBeforeRaise{
    "permission.not_before_raise",
    "INSERT INTO token_not_before (username, not_before) VALUES ($1, $2) ON CONFLICT (username) "
    "DO UPDATE SET not_before = GREATEST(token_not_before.not_before, EXCLUDED.not_before)"};
constexpr db::Statement kNotBeforeGet{
    "permission.not_before_get", "SELECT not_before FROM token_not_before WHERE username = $1"};
// auth state
constexpr db::Statement kRevokedList{"permission.revoked_list",
                                     "SELECT token_id, expire_time FROM revoked_tokens WHERE "
                                     "expire_time IS NULL OR expire_time > $1 "
                                     "ORDER BY token_id"};
constexpr db::Statement kBlockedList{
    "permission.blocked_list",
    "SELECT username FROM users WHERE disabled UNION SELECT n.username FROM token_not_before n "
    "WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.username = n.username) ORDER BY 1"};
constexpr db::Statement kNotBeforeList{
    "permission.not_before_list",
    "SELECT username, not_before FROM token_not_before ORDER BY username"};
// housekeeping
constexpr db::Statement kPruneRefresh{"permission.prune_refresh",
                                      "DELETE FROM refresh_tokens WHERE expire_time < $1"};
constexpr db::Statement kPruneRevoked{
    "permission.prune_revoked",
    "DELETE FROM revoked_tokens WHERE expire_time IS NOT NULL AND expire_time < $1"};
constexpr db::Statement kLockBootstrap{
    "permission.lock_bootstrap",
    "SELECT pg_advisory_xact_lock(hashtextextended('permission.bootstrap', 0))"};
constexpr db::Statement kMarkOnce{
    "permission.mark_once",
    "INSERT INTO service_state (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING key"};

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
  *u.user.mutable_create_time() = r[8].as<db::Timestamp>().ToProto();
  *u.user.mutable_update_time() = r[9].as<db::Timestamp>().ToProto();
  return u;
}

v1::Team TeamFromRow(const pqxx::row& r) {
  v1::Team t;
  t.set_name("teams/" + r[0].as<std::string>());
  t.set_display_name(r[1].as<std::string>());
  t.set_description(r[2].as<std::string>());
  *t.mutable_create_time() = r[3].as<db::Timestamp>().ToProto();
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
  *p.project.mutable_create_time() = r[6].as<db::Timestamp>().ToProto();
  *p.project.mutable_update_time() = r[7].as<db::Timestamp>().ToProto();
  p.project.set_default_compute_cluster(r[8].as<std::string>());
  return p;
}

BindingRow BindingFromRow(const pqxx::row& r) {
  BindingRow b;
  b.project_id = r[1].as<std::string>();
  b.binding.set_name(
      absl::StrCat("projects/", b.project_id, "/roleBindings/", r[0].as<std::string>()));
  b.binding.set_subject(r[2].as<std::string>());
  b.binding.set_role(static_cast<v1::Role>(r[3].as<int>()));
  *b.binding.mutable_create_time() = r[4].as<db::Timestamp>().ToProto();
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
  *g.grant.mutable_create_time() = r[6].as<db::Timestamp>().ToProto();
  return g;
}

ApiTokenRow ApiTokenFromRow(const pqxx::row& r) {
  ApiTokenRow t;
  t.username = r[1].as<std::string>();
  t.token.set_name(absl::StrCat("users/", t.username, "/tokens/", r[0].as<std::string>()));
  t.token.set_display_name(r[2].as<std::string>());
  t.token_hash = r[3].as<std::string>();
  *t.token.mutable_create_time() = r[4].as<db::Timestamp>().ToProto();
  if (auto e = r[5].as<std::optional<db::Timestamp>>())
    *t.token.mutable_expire_time() = e->ToProto();
  if (auto v = r[6].as<std::optional<db::Timestamp>>())
    *t.token.mutable_revoke_time() = v->ToProto();
  t.token.set_scope(r[7].as<std::string>());
  return t;
}

int64_t Count(const pqxx::result& r) { return r[0][0].as<int64_t>(); }

}  // namespace

const db::StatementSet& PermissionStore::Statements() {
  static const auto* set = new db::StatementSet{
      // users
      kUserFind, kUserFindForUpdate, kUserInsert, kUserUpdate, kUserSetPassword, kUserDelete,
      kUserCount, kUserOtherAdmins, kUserFlags, kMemberships, kShareTeam,
      // teams
      kTeamFind, kTeamFindForUpdate, kTeamInsert, kTeamDelete, kTeamList, kMemberRole,
      kMemberUpsert, kMemberRemove, kMemberList, kMemberOwners,
      // projects
      kProjectFind, kProjectFindForUpdate, kProjectInsert, kProjectUpdate, kProjectDelete,
      kProjectListAll, kProjectListVisible, kProjectOwners,
      // role bindings
      kBindingUpsert, kBindingList, kBindingFind, kBindingDelete, kBindingFor,
      kBindingDeleteSubject, kGrantDeleteSubject,
      // grants
      kGrantUpsert, kGrantList, kGrantListAll, kGrantFind, kGrantDelete, kGrantDeleteUnder,
      kGrantFor, kGrantedIn,
      // tokens
      kApiTokenInsert, kApiTokenList, kApiTokenFind, kApiTokenFindForUpdate, kApiTokenRevoke,
      kRefreshInsert, kRefreshTake, kRefreshDeleteUser, kRevokedInsert, kNotBeforeRaise,
      kNotBeforeGet,
      // auth state
      kRevokedList, kBlockedList, kNotBeforeList,
      // housekeeping
      kPruneRefresh, kPruneRevoked, kLockBootstrap, kMarkOnce};
  return *set;
}

// ---- users

std::optional<UserRow> PermissionStore::FindUser(pqxx::transaction_base& tx,
                                                 const std::string& username, bool for_update) {
  auto r = db::Exec(tx, for_update ? kUserFindForUpdate : kUserFind, username);
  if (r.empty()) return std::nullopt;
  return UserFromRow(r[0]);
}

void PermissionStore::InsertUser(pqxx::work& tx, const std::string& username, const v1::User& u,
                                 const std::string& password_hash) {
  db::Exec(tx, kUserInsert, username, u.display_name(), u.email(), u.disabled(), u.admin(),
           password_hash, u.etag(), db::Timestamp::FromProto(u.create_time()),
           db::Timestamp::FromProto(u.update_time()));
}

void PermissionStore::UpdateUser(pqxx::work& tx, const std::string& username, const v1::User& u) {
  db::Exec(tx, kUserUpdate, username, u.display_name(), u.email(), u.disabled(), u.admin(),
           u.etag(), db::Timestamp::FromProto(u.update_time()));
}

void PermissionStore::SetPasswordHash(pqxx::work& tx, const std::string& username,
                                      const std::string& hash, int64_t update_micros) {
  db::Exec(tx, kUserSetPassword, username, hash, db::Timestamp{update_micros});
}

void PermissionStore::DeleteUser(pqxx::work& tx, const std::string& username) {
  db::Exec(tx, kUserDelete, username);
}

const api::FilterFields& PermissionStore::UserFilterFields() {
  using api::FilterType;
  static const auto* fields = new api::FilterFields{
      {.name = "name",
       .sql = "username",
       .normalize =
           [](const std::string& v) { return v.rfind("users/", 0) == 0 ? v.substr(6) : v; }},
      {.name = "display_name", .sql = "display_name", .aliases = {"displayName"}},
      {.name = "disabled", .type = FilterType::kBool, .sql = "disabled"},
      {.name = "admin", .type = FilterType::kBool, .sql = "admin"},
      {.name = "create_time",
       .type = FilterType::kTimestamp,
       .sql = "create_time",
       .aliases = {"createTime"}},
  };
  return *fields;
}

std::vector<UserRow> PermissionStore::ListUsers(pqxx::transaction_base& tx,
                                                const UserListQuery& q) {
  db::ListQuery query(
      "SELECT username, seq, display_name, email, disabled, admin, password_hash, etag, "
      "create_time, update_time FROM users WHERE seq > $1::bigint",
      {absl::StrCat(q.after_seq)});
  query.Where(q.filter);
  std::vector<UserRow> out;
  for (const auto& row : query.Run(tx, "seq", /*descending=*/false, q.limit)) {
    out.push_back(UserFromRow(row));
  }
  return out;
}

int64_t PermissionStore::CountUsers(pqxx::transaction_base& tx) {
  return Count(db::Exec(tx, kUserCount));
}

int64_t PermissionStore::CountOtherActiveAdmins(pqxx::transaction_base& tx,
                                                const std::string& except) {
  return Count(db::Exec(tx, kUserOtherAdmins, except));
}

std::vector<SubjectFlags> PermissionStore::UserFlags(pqxx::transaction_base& tx,
                                                     const std::vector<std::string>& usernames) {
  std::vector<SubjectFlags> out;
  if (usernames.empty()) return out;
  for (const auto& r : db::Exec(tx, kUserFlags, db::TextArray(usernames))) {
    out.push_back({r[0].as<std::string>(), r[1].as<bool>(), r[2].as<bool>()});
  }
  return out;
}

std::vector<TeamMembership> PermissionStore::Memberships(
    pqxx::transaction_base& tx, const std::vector<std::string>& usernames) {
  std::vector<TeamMembership> out;
  if (usernames.empty()) return out;
  for (const auto& r : db::Exec(tx, kMemberships, db::TextArray(usernames))) {
    out.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<int>()});
  }
  return out;
}

bool PermissionStore::ShareTeam(pqxx::transaction_base& tx, const std::string& a,
                                const std::string& b) {
  return !db::Exec(tx, kShareTeam, a, b).empty();
}

// ---- teams

std::optional<v1::Team> PermissionStore::FindTeam(pqxx::transaction_base& tx,
                                                  const std::string& team_id, bool for_update) {
  auto r = db::Exec(tx, for_update ? kTeamFindForUpdate : kTeamFind, team_id);
  if (r.empty()) return std::nullopt;
  return TeamFromRow(r[0]);
}

void PermissionStore::InsertTeam(pqxx::work& tx, const std::string& team_id, const v1::Team& t) {
  db::Exec(tx, kTeamInsert, team_id, t.display_name(), t.description(),
           db::Timestamp::FromProto(t.create_time()));
}

void PermissionStore::DeleteTeam(pqxx::work& tx, const std::string& team_id) {
  db::Exec(tx, kTeamDelete, team_id);
}

std::vector<std::pair<int64_t, v1::Team>> PermissionStore::ListTeams(pqxx::transaction_base& tx,
                                                                     int64_t after_seq, int limit) {
  std::vector<std::pair<int64_t, v1::Team>> out;
  for (const auto& r : db::Exec(tx, kTeamList, after_seq, limit)) {
    out.emplace_back(r[5].as<int64_t>(), TeamFromRow(r));
  }
  return out;
}

std::optional<int> PermissionStore::MemberRole(pqxx::transaction_base& tx,
                                               const std::string& team_id,
                                               const std::string& username) {
  auto r = db::Exec(tx, kMemberRole, team_id, username);
  if (r.empty()) return std::nullopt;
  return r[0][0].as<int>();
}

void PermissionStore::UpsertMember(pqxx::work& tx, const std::string& team_id,
                                   const std::string& username, int role) {
  db::Exec(tx, kMemberUpsert, team_id, username, role);
}

bool PermissionStore::RemoveMember(pqxx::work& tx, const std::string& team_id,
                                   const std::string& username) {
  return db::Exec(tx, kMemberRemove, team_id, username).affected_rows() > 0;
}

std::vector<v1::TeamMember> PermissionStore::ListMembers(pqxx::transaction_base& tx,
                                                         const std::string& team_id) {
  std::vector<v1::TeamMember> out;
  for (const auto& r : db::Exec(tx, kMemberList, team_id)) {
    v1::TeamMember m;
    m.set_user("users/" + r[0].as<std::string>());
    m.set_role(static_cast<v1::TeamRole>(r[1].as<int>()));
    out.push_back(std::move(m));
  }
  return out;
}

int64_t PermissionStore::CountOwners(pqxx::transaction_base& tx, const std::string& team_id) {
  return Count(db::Exec(tx, kMemberOwners, team_id));
}

// ---- projects

std::optional<ProjectRow> PermissionStore::FindProject(pqxx::transaction_base& tx,
                                                       const std::string& project_id,
                                                       bool for_update) {
  auto r = db::Exec(tx, for_update ? kProjectFindForUpdate : kProjectFind, project_id);
  if (r.empty()) return std::nullopt;
  return ProjectFromRow(r[0]);
}

void PermissionStore::InsertProject(pqxx::work& tx, const std::string& project_id,
                                    const v1::Project& p) {
  db::Exec(tx, kProjectInsert, project_id, p.display_name(), p.description(), p.owner(), p.etag(),
           db::Timestamp::FromProto(p.create_time()), db::Timestamp::FromProto(p.update_time()),
           p.default_compute_cluster());
}

void PermissionStore::UpdateProject(pqxx::work& tx, const std::string& project_id,
                                    const v1::Project& p) {
  db::Exec(tx, kProjectUpdate, project_id, p.display_name(), p.description(), p.owner(), p.etag(),
           db::Timestamp::FromProto(p.update_time()), p.default_compute_cluster());
}

void PermissionStore::DeleteProject(pqxx::work& tx, const std::string& project_id) {
  db::Exec(tx, kProjectDelete, project_id);
}

std::vector<ProjectRow> PermissionStore::ListProjects(pqxx::transaction_base& tx, bool all,
                                                      const std::vector<std::string>& owners,
                                                      const std::vector<std::string>& subjects,
                                                      int64_t after_seq, int limit) {
  pqxx::result r = all ? db::Exec(tx, kProjectListAll, after_seq, limit)
                       : db::Exec(tx, kProjectListVisible, after_seq, limit, db::TextArray(owners),
                                  db::TextArray(subjects));
  std::vector<ProjectRow> out;
  for (const auto& row : r) out.push_back(ProjectFromRow(row));
  return out;
}

std::vector<std::pair<std::string, std::string>> PermissionStore::ProjectOwners(
    pqxx::transaction_base& tx, const std::vector<std::string>& ids) {
  std::vector<std::pair<std::string, std::string>> out;
  if (ids.empty()) return out;
  for (const auto& r : db::Exec(tx, kProjectOwners, db::TextArray(ids))) {
    out.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }
  return out;
}

// ---- role bindings

v1::RoleBinding PermissionStore::UpsertBinding(pqxx::work& tx, const std::string& project_id,
                                               const std::string& binding_id,
                                               const std::string& subject, int role,
                                               int64_t create_micros, bool* replaced) {
  auto r = db::Exec(tx, kBindingUpsert, binding_id, project_id, subject, role,
                    db::Timestamp{create_micros});
  v1::RoleBinding b;
  b.set_name(absl::StrCat("projects/", project_id, "/roleBindings/", r[0][0].as<std::string>()));
  b.set_subject(subject);
  b.set_role(static_cast<v1::Role>(role));
  *b.mutable_create_time() = r[0][1].as<db::Timestamp>().ToProto();
  *replaced = r[0][2].as<bool>();
  return b;
}

std::vector<v1::RoleBinding> PermissionStore::ListBindings(pqxx::transaction_base& tx,
                                                           const std::string& project_id) {
  std::vector<v1::RoleBinding> out;
  for (const auto& r : db::Exec(tx, kBindingList, project_id)) {
    out.push_back(BindingFromRow(r).binding);
  }
  return out;
}

std::optional<BindingRow> PermissionStore::FindBinding(pqxx::transaction_base& tx,
                                                       const std::string& binding_id) {
  auto r = db::Exec(tx, kBindingFind, binding_id);
  if (r.empty()) return std::nullopt;
  return BindingFromRow(r[0]);
}

void PermissionStore::DeleteBinding(pqxx::work& tx, const std::string& binding_id) {
  db::Exec(tx, kBindingDelete, binding_id);
}

std::vector<BindingRow> PermissionStore::BindingsFor(pqxx::transaction_base& tx,
                                                     const std::vector<std::string>& projects,
                                                     const std::vector<std::string>& subjects) {
  std::vector<BindingRow> out;
  if (projects.empty() || subjects.empty()) return out;
  for (const auto& r :
       db::Exec(tx, kBindingFor, db::TextArray(projects), db::TextArray(subjects))) {
    out.push_back(BindingFromRow(r));
  }
  return out;
}

int64_t PermissionStore::DeleteAccessOf(pqxx::work& tx, const std::string& subject) {
  return db::Exec(tx, kBindingDeleteSubject, subject).affected_rows() +
         db::Exec(tx, kGrantDeleteSubject, subject).affected_rows();
}

// ---- grants

v1::Grant PermissionStore::UpsertGrant(pqxx::work& tx, const std::string& project_id,
                                       const std::string& grant_id, const v1::Grant& g,
                                       int64_t create_micros, bool* replaced) {
  auto r = db::Exec(tx, kGrantUpsert, grant_id, project_id, g.resource(), g.subject(),
                    static_cast<int>(g.permission()), g.creator(), db::Timestamp{create_micros});
  v1::Grant out = g;
  out.set_name("grants/" + r[0][0].as<std::string>());
  *out.mutable_create_time() = r[0][1].as<db::Timestamp>().ToProto();
  *replaced = r[0][2].as<bool>();
  return out;
}

std::vector<v1::Grant> PermissionStore::ListGrants(pqxx::transaction_base& tx,
                                                   const std::string& resource) {
  pqxx::result r =
      resource.empty() ? db::Exec(tx, kGrantListAll) : db::Exec(tx, kGrantList, resource);
  std::vector<v1::Grant> out;
  for (const auto& row : r) out.push_back(GrantFromRow(row).grant);
  return out;
}

std::optional<GrantRow> PermissionStore::FindGrant(pqxx::transaction_base& tx,
                                                   const std::string& grant_id) {
  auto r = db::Exec(tx, kGrantFind, grant_id);
  if (r.empty()) return std::nullopt;
  return GrantFromRow(r[0]);
}

void PermissionStore::DeleteGrant(pqxx::work& tx, const std::string& grant_id) {
  db::Exec(tx, kGrantDelete, grant_id);
}

std::vector<std::pair<std::string, std::string>> PermissionStore::DeleteGrantsUnder(
    pqxx::work& tx, const std::string& resource) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& row : db::Exec(tx, kGrantDeleteUnder, resource)) {
    out.emplace_back(row[0].as<std::string>(), row[1].as<std::string>());
  }
  return out;
}

std::vector<v1::Grant> PermissionStore::GrantsFor(pqxx::transaction_base& tx,
                                                  const std::vector<std::string>& resources,
                                                  const std::vector<std::string>& subjects) {
  std::vector<v1::Grant> out;
  if (resources.empty() || subjects.empty()) return out;
  for (const auto& r : db::Exec(tx, kGrantFor, db::TextArray(resources), db::TextArray(subjects))) {
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
  for (const auto& r :
       db::Exec(tx, kGrantedIn, collection_prefix, db::TextArray(subjects), permission)) {
    out.push_back(r[0].as<std::string>());
  }
  return out;
}

// ---- tokens

void PermissionStore::InsertApiToken(pqxx::work& tx, const ApiTokenRow& row) {
  std::string id = row.token.name().substr(row.token.name().rfind('/') + 1);
  db::Exec(tx, kApiTokenInsert, id, row.username, row.token.display_name(), row.token_hash,
           db::Timestamp::FromProto(row.token.create_time()),
           row.token.has_expire_time()
               ? std::optional(db::Timestamp::FromProto(row.token.expire_time()))
               : std::nullopt,
           row.token.scope());
}

std::vector<ApiTokenRow> PermissionStore::ListApiTokens(pqxx::transaction_base& tx,
                                                        const std::string& username) {
  std::vector<ApiTokenRow> out;
  for (const auto& r : db::Exec(tx, kApiTokenList, username)) {
    out.push_back(ApiTokenFromRow(r));
  }
  return out;
}

std::optional<ApiTokenRow> PermissionStore::FindApiToken(pqxx::transaction_base& tx,
                                                         const std::string& token_id,
                                                         bool for_update) {
  auto r = db::Exec(tx, for_update ? kApiTokenFindForUpdate : kApiTokenFind, token_id);
  if (r.empty()) return std::nullopt;
  return ApiTokenFromRow(r[0]);
}

void PermissionStore::RevokeApiTokenRow(pqxx::work& tx, const std::string& token_id,
                                        int64_t revoke_micros) {
  db::Exec(tx, kApiTokenRevoke, token_id, db::Timestamp{revoke_micros});
}

void PermissionStore::InsertRefreshToken(pqxx::work& tx, const std::string& hash,
                                         const std::string& username, int64_t create_micros,
                                         int64_t expire_micros) {
  db::Exec(tx, kRefreshInsert, hash, username, db::Timestamp{create_micros},
           db::Timestamp{expire_micros});
}

std::optional<std::pair<std::string, int64_t>> PermissionStore::TakeRefreshToken(
    pqxx::work& tx, const std::string& hash) {
  auto r = db::Exec(tx, kRefreshTake, hash);
  if (r.empty()) return std::nullopt;
  return std::make_pair(r[0][0].as<std::string>(), r[0][1].as<db::Timestamp>().micros);
}

int64_t PermissionStore::DeleteRefreshTokensOf(pqxx::work& tx, const std::string& username) {
  return db::Exec(tx, kRefreshDeleteUser, username).affected_rows();
}

void PermissionStore::InsertRevokedToken(pqxx::work& tx, const std::string& token_id,
                                         const std::string& username, int64_t expire_micros,
                                         int64_t revoke_micros) {
  // expire_micros 0: the token never expires (NULL).
  db::Exec(tx, kRevokedInsert, token_id, username,
           expire_micros == 0 ? std::nullopt : std::optional(db::Timestamp{expire_micros}),
           db::Timestamp{revoke_micros});
}

void PermissionStore::RaiseNotBefore(pqxx::work& tx, const std::string& username, int64_t micros) {
  db::Exec(tx, kNotBeforeRaise, username, db::Timestamp{micros});
}

int64_t PermissionStore::NotBefore(pqxx::transaction_base& tx, const std::string& username) {
  auto r = db::Exec(tx, kNotBeforeGet, username);
  return r.empty() ? 0 : r[0][0].as<db::Timestamp>().micros;
}

// ---- auth state

std::vector<std::pair<std::string, int64_t>> PermissionStore::RevokedTokens(
    pqxx::transaction_base& tx, int64_t now_micros) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : db::Exec(tx, kRevokedList, db::Timestamp{now_micros})) {
    // 0: never expires.
    auto expire = r[1].as<std::optional<db::Timestamp>>();
    out.emplace_back(r[0].as<std::string>(), expire ? expire->micros : 0);
  }
  return out;
}

std::vector<std::string> PermissionStore::BlockedUsers(pqxx::transaction_base& tx) {
  std::vector<std::string> out;
  for (const auto& r : db::Exec(tx, kBlockedList)) out.push_back(r[0].as<std::string>());
  return out;
}

std::vector<std::pair<std::string, int64_t>> PermissionStore::NotBefores(
    pqxx::transaction_base& tx) {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const auto& r : db::Exec(tx, kNotBeforeList)) {
    out.emplace_back(r[0].as<std::string>(), r[1].as<db::Timestamp>().micros);
  }
  return out;
}

// ---- housekeeping and bootstrap

int64_t PermissionStore::PruneExpired(pqxx::work& tx, int64_t now_micros) {
  const db::Timestamp now{now_micros};
  return db::Exec(tx, kPruneRefresh, now).affected_rows() +
         db::Exec(tx, kPruneRevoked, now).affected_rows();
}

void PermissionStore::LockBootstrap(pqxx::work& tx) { db::Exec(tx, kLockBootstrap); }

bool PermissionStore::MarkOnce(pqxx::work& tx, const std::string& key) {
  return !db::Exec(tx, kMarkOnce, key).empty();
}

}  // namespace submarine::permission
