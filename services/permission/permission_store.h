#pragma once
// PermissionStore owns every SQL statement of the identity and access tables (migration
// 0001_identity.sql). Statements are named db::Statement constants ("permission.*"), prepared by
// the pool on every connection (Statements(), ConnectionPool::Options::statements) and take $n
// parameters only; set-valued parameters travel as one text[] parameter built by db::TextArray,
// never as SQL text. Every method runs inside the caller's transaction; libpqxx exceptions
// propagate to ConnectionPool::Transact/Read, which turn them into statuses.
// Times cross this interface as Unix microseconds and the database boundary as db::Timestamp.

#include <pqxx/pqxx>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/api/filter_compiler.h"
#include "common/db/list_query.h"
#include "common/db/statement.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

struct UserRow {
  int64_t seq = 0;
  v1::User user;  // name, display_name, email, disabled, admin, times, etag (teams not filled)
  std::string password_hash;
};

struct TeamMembership {
  std::string username;
  std::string team_id;
  int role = 0;  // v1::TeamRole
};

struct SubjectFlags {
  std::string username;
  bool admin = false;
  bool disabled = false;
};

struct ProjectRow {
  int64_t seq = 0;
  v1::Project project;
};

struct BindingRow {
  std::string project_id;
  v1::RoleBinding binding;
};

struct GrantRow {
  std::string project_id;
  v1::Grant grant;
};

struct ApiTokenRow {
  std::string username;
  std::string token_hash;
  v1::ApiToken token;
};

struct UserListQuery {
  // The compiled filter (api::CompileFilter over PermissionStore::UserFilterFields()).
  db::WhereExpr filter;
  int64_t after_seq = 0;
  int limit = 50;
};

class PermissionStore {
 public:
  // Every statement of this store; give it to the pool (ConnectionPool::Options::statements).
  static const db::StatementSet& Statements();

  // ---- users
  static std::optional<UserRow> FindUser(pqxx::transaction_base& tx, const std::string& username,
                                         bool for_update);
  static void InsertUser(pqxx::work& tx, const std::string& username, const v1::User& user,
                         const std::string& password_hash);
  static void UpdateUser(pqxx::work& tx, const std::string& username, const v1::User& user);
  static void SetPasswordHash(pqxx::work& tx, const std::string& username,
                              const std::string& hash, int64_t update_micros);
  static void DeleteUser(pqxx::work& tx, const std::string& username);
  // What ListUsers filters may name: name ("users/a*" or "a*"), display_name, disabled, admin,
  // create_time.
  static const api::FilterFields& UserFilterFields();
  static std::vector<UserRow> ListUsers(pqxx::transaction_base& tx, const UserListQuery& q);
  static int64_t CountUsers(pqxx::transaction_base& tx);
  // Enabled admins other than `except`.
  static int64_t CountOtherActiveAdmins(pqxx::transaction_base& tx, const std::string& except);
  // admin/disabled of the existing users among `usernames`.
  static std::vector<SubjectFlags> UserFlags(pqxx::transaction_base& tx,
                                             const std::vector<std::string>& usernames);
  // Memberships of `usernames`.
  static std::vector<TeamMembership> Memberships(pqxx::transaction_base& tx,
                                                 const std::vector<std::string>& usernames);
  // Whether two users share a team.
  static bool ShareTeam(pqxx::transaction_base& tx, const std::string& a, const std::string& b);

  // ---- teams
  static std::optional<v1::Team> FindTeam(pqxx::transaction_base& tx, const std::string& team_id,
                                          bool for_update);
  static void InsertTeam(pqxx::work& tx, const std::string& team_id, const v1::Team& team);
  static void DeleteTeam(pqxx::work& tx, const std::string& team_id);
  static std::vector<std::pair<int64_t, v1::Team>> ListTeams(pqxx::transaction_base& tx,
                                                             int64_t after_seq, int limit);
  static std::optional<int> MemberRole(pqxx::transaction_base& tx, const std::string& team_id,
                                       const std::string& username);
  static void UpsertMember(pqxx::work& tx, const std::string& team_id,
                           const std::string& username, int role);
  static bool RemoveMember(pqxx::work& tx, const std::string& team_id,
                           const std::string& username);
  static std::vector<v1::TeamMember> ListMembers(pqxx::transaction_base& tx,
                                                 const std::string& team_id);
  static int64_t CountOwners(pqxx::transaction_base& tx, const std::string& team_id);

  // ---- projects
  static std::optional<ProjectRow> FindProject(pqxx::transaction_base& tx,
                                               const std::string& project_id, bool for_update);
  static void InsertProject(pqxx::work& tx, const std::string& project_id,
                            const v1::Project& project);
  static void UpdateProject(pqxx::work& tx, const std::string& project_id,
                            const v1::Project& project);
  static void DeleteProject(pqxx::work& tx, const std::string& project_id);
  // All projects (admins), or those owned by one of `owners` or bound to one of `subjects`.
  static std::vector<ProjectRow> ListProjects(pqxx::transaction_base& tx, bool all,
                                              const std::vector<std::string>& owners,
                                              const std::vector<std::string>& subjects,
                                              int64_t after_seq, int limit);
  // (project_id, owner) of the existing projects among `ids`.
  static std::vector<std::pair<std::string, std::string>> ProjectOwners(
      pqxx::transaction_base& tx, const std::vector<std::string>& ids);

  // ---- role bindings
  // Inserts, or changes the role of the subject's existing binding (keeping its id).
  static v1::RoleBinding UpsertBinding(pqxx::work& tx, const std::string& project_id,
                                       const std::string& binding_id, const std::string& subject,
                                       int role, int64_t create_micros, bool* replaced);
  static std::vector<v1::RoleBinding> ListBindings(pqxx::transaction_base& tx,
                                                   const std::string& project_id);
  static std::optional<BindingRow> FindBinding(pqxx::transaction_base& tx,
                                               const std::string& binding_id);
  static void DeleteBinding(pqxx::work& tx, const std::string& binding_id);
  // Bindings on `projects` for `subjects`.
  static std::vector<BindingRow> BindingsFor(pqxx::transaction_base& tx,
                                             const std::vector<std::string>& projects,
                                             const std::vector<std::string>& subjects);
  // Removes every binding and grant of a subject (a deleted user or team); returns how many.
  static int64_t DeleteAccessOf(pqxx::work& tx, const std::string& subject);

  // ---- grants
  static v1::Grant UpsertGrant(pqxx::work& tx, const std::string& project_id,
                               const std::string& grant_id, const v1::Grant& grant,
                               int64_t create_micros, bool* replaced);
  // Grants on `resource`, or every grant when `resource` is empty.
  static std::vector<v1::Grant> ListGrants(pqxx::transaction_base& tx,
                                           const std::string& resource);
  static std::optional<GrantRow> FindGrant(pqxx::transaction_base& tx,
                                           const std::string& grant_id);
  static void DeleteGrant(pqxx::work& tx, const std::string& grant_id);
  // Deletes the grants on `resource` and on every resource below it (a deleted resource's);
  // returns the (resource, subject) of each.
  static std::vector<std::pair<std::string, std::string>> DeleteGrantsUnder(
      pqxx::work& tx, const std::string& resource);
  // Grants on any of `resources` for any of `subjects`.
  static std::vector<v1::Grant> GrantsFor(pqxx::transaction_base& tx,
                                          const std::vector<std::string>& resources,
                                          const std::vector<std::string>& subjects);
  // Distinct resources directly under `collection_prefix` ("projects/p/envs/") granted to one of
  // `subjects` with at least `permission`.
  static std::vector<std::string> GrantedIn(pqxx::transaction_base& tx,
                                            const std::string& collection_prefix,
                                            const std::vector<std::string>& subjects,
                                            int permission);

  // ---- tokens
  static void InsertApiToken(pqxx::work& tx, const ApiTokenRow& row);
  static std::vector<ApiTokenRow> ListApiTokens(pqxx::transaction_base& tx,
                                                const std::string& username);
  static std::optional<ApiTokenRow> FindApiToken(pqxx::transaction_base& tx,
                                                 const std::string& token_id, bool for_update);
  static void RevokeApiTokenRow(pqxx::work& tx, const std::string& token_id,
                                int64_t revoke_micros);
  static void InsertRefreshToken(pqxx::work& tx, const std::string& hash,
                                 const std::string& username, int64_t create_micros,
                                 int64_t expire_micros);
  // Deletes the token and returns (username, expire_micros) if it existed.
  static std::optional<std::pair<std::string, int64_t>> TakeRefreshToken(pqxx::work& tx,
                                                                         const std::string& hash);
  static int64_t DeleteRefreshTokensOf(pqxx::work& tx, const std::string& username);
  // expire_micros 0 = never expires.
  static void InsertRevokedToken(pqxx::work& tx, const std::string& token_id,
                                 const std::string& username, int64_t expire_micros,
                                 int64_t revoke_micros);
  // Raises the user's not-before to `micros` (never lowers it).
  static void RaiseNotBefore(pqxx::work& tx, const std::string& username, int64_t micros);
  // The user's not-before, 0 if none.
  static int64_t NotBefore(pqxx::transaction_base& tx, const std::string& username);

  // ---- auth state
  static std::vector<std::pair<std::string, int64_t>> RevokedTokens(pqxx::transaction_base& tx,
                                                                    int64_t now_micros);
  // Disabled users, and deleted users with a not-before (not re-created since).
  static std::vector<std::string> BlockedUsers(pqxx::transaction_base& tx);
  static std::vector<std::pair<std::string, int64_t>> NotBefores(pqxx::transaction_base& tx);

  // ---- housekeeping and bootstrap
  // Deletes expired refresh tokens and revocations of expired tokens; returns how many.
  static int64_t PruneExpired(pqxx::work& tx, int64_t now_micros);
  // Serializes bootstrap between replicas until the transaction ends.
  static void LockBootstrap(pqxx::work& tx);
  // Returns false if `key` was already marked.
  static bool MarkOnce(pqxx::work& tx, const std::string& key);
};

}  // namespace submarine::permission
