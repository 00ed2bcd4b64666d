#include "services/permission/identity.h"

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "services/permission/identity_rules.h"
#include "services/permission/permission_names.h"
#include "services/permission/permission_store.h"

namespace submarine::permission {
namespace {

constexpr char kAdmin[] = "admin";
constexpr char kDefaultProject[] = "default";

}  // namespace

Identity::Identity(db::ConnectionPool* pool, IdentityOptions options, const Clock& clock,
                   IdGenerator& ids)
    : pool_(pool),
      admin_password_file_(options.admin_password_file),
      clock_(clock),
      ids_(ids),
      throttle_(options.login_throttle),
      hasher_(options.passwords) {}

absl::StatusOr<std::unique_ptr<Identity>> Identity::Create(
    db::ConnectionPool* pool, const api::Idempotency* idempotency, IdentityOptions options,
    const Clock& clock, IdGenerator& ids) {
  std::unique_ptr<Identity> identity(new Identity(pool, options, clock, ids));
  Identity* i = identity.get();
  SUBMARINE_ASSIGN_OR_RETURN(i->sessions_,
                             SessionManager::Create(pool, idempotency, std::move(options.sessions), clock, ids,
                                                    &i->throttle_, &i->hasher_));
  i->users_ = std::make_unique<UserManager>(pool, idempotency, clock, ids, &i->throttle_,
                                            &i->hasher_);
  i->teams_ = std::make_unique<TeamManager>(pool, idempotency, clock);
  i->projects_ =
      std::make_unique<ProjectManager>(pool, idempotency, clock, ids,
                                       std::move(options.project_holdings));
  return identity;
}

absl::Status Identity::Bootstrap(bool* created) {
  if (created) *created = false;
  std::string password = auth::RandomToken(18);
  SUBMARINE_ASSIGN_OR_RETURN(std::string hash, hasher_.Hash(password, db::kNoDeadline));
  CallInfo system;
  system.subject = "system";
  bool did = false;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) -> absl::Status {
    did = false;
    PermissionStore::LockBootstrap(tx);
    if (!PermissionStore::MarkOnce(tx, "bootstrapped")) return absl::OkStatus();
    int64_t now = NowMicros(clock_);
    if (!PermissionStore::FindUser(tx, kAdmin, false)) {
      v1::User admin;
      admin.set_name(absl::StrCat("users/", kAdmin));
      admin.set_display_name("Administrator");
      admin.set_admin(true);
      admin.set_etag(ids_.RandomHex(8));
      *admin.mutable_create_time() = Ts(now);
      *admin.mutable_update_time() = Ts(now);
      PermissionStore::InsertUser(tx, kAdmin, admin, hash);
      SUBMARINE_RETURN_IF_ERROR(PublishUser(tx, admin, v1::CREATED, system));
    }
    if (!PermissionStore::FindProject(tx, kDefaultProject, false)) {
      v1::Project project;
      project.set_name(absl::StrCat("projects/", kDefaultProject));
      project.set_display_name("Default project");
      project.set_owner(absl::StrCat("users/", kAdmin));
      project.set_etag(ids_.RandomHex(8));
      *project.mutable_create_time() = Ts(now);
      *project.mutable_update_time() = Ts(now);
      PermissionStore::InsertProject(tx, kDefaultProject, project);
      SUBMARINE_RETURN_IF_ERROR(PublishProject(tx, project, v1::CREATED, system));
      bool replaced = false;
      PermissionStore::UpsertBinding(tx, kDefaultProject, ids_.RandomHex(8), kAllUsers, v1::VIEWER,
                                     now, &replaced);
      v1::AccessChanged access;
      access.set_resource(project.name());
      access.set_subject(kAllUsers);
      access.set_change(v1::CREATED);
      SUBMARINE_RETURN_IF_ERROR(Publish(tx, access, project.name(), system));
    }
    // Written before COMMIT: if the file cannot be written nothing is created, and the marker
    // guarantees no committed admin ever had an earlier password, so overwriting is safe here.
    if (!admin_password_file_.empty()) {
      SUBMARINE_RETURN_IF_ERROR(
          config::WriteFileAtomic(admin_password_file_, password + "\n", 0600));
    }
    did = true;
    return absl::OkStatus();
  }));
  if (created) *created = did;
  if (did) {
    log::Get("bootstrap")
        ->warn("created user \"admin\"; its password is in {}", admin_password_file_);
  }
  return absl::OkStatus();
}

}  // namespace submarine::permission
