#include "services/permission/identity_rules.h"

#include <google/protobuf/util/time_util.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "services/permission/permission_names.h"
#include "services/permission/permission_store.h"

namespace submarine::permission {

int64_t NowMicros(const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::microseconds>(clock.Now().time_since_epoch())
      .count();
}

google::protobuf::Timestamp Ts(int64_t micros) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(micros);
}

int64_t CeilSecondMicros(int64_t micros) { return (micros + 999999) / 1000000 * 1000000; }

absl::Status CheckPassword(const std::string& password, const std::string& field) {
  if (password.size() < kMinPassword || password.size() > kMaxPassword) {
    return InvalidField(
        field, absl::StrCat("passwords are ", kMinPassword, " to ", kMaxPassword, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status CheckEmail(const std::string& email, const std::string& field) {
  SUBMARINE_RETURN_IF_ERROR(CheckText(email, field, 254));
  if (email.empty()) return absl::OkStatus();
  auto at = email.find('@');
  if (at == std::string::npos || at == 0 || at + 1 == email.size() ||
      email.find('@', at + 1) != std::string::npos || email.find(' ') != std::string::npos) {
    return InvalidField(field, "is not an e-mail address (one \"@\", no spaces)");
  }
  return absl::OkStatus();
}

absl::Status EtagMismatch(const std::string& name) {
  return MakeError(absl::StatusCode::kAborted, "ETAG_MISMATCH",
                   absl::StrCat(Quote(name),
                                " was changed concurrently: the etag does not match; "
                                "read it again and retry"),
                   {{"resource", name}});
}

absl::Status CheckOwnsNothing(pqxx::transaction_base& tx, const std::string& owner) {
  auto owned = PermissionStore::ListProjects(tx, false, {owner}, {}, 0, 1);
  if (!owned.empty()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "OWNS_PROJECTS",
                     absl::StrCat(owner, " still owns ", owned[0].project.name(),
                                  "; transfer or delete its projects first"),
                     {{"owner", owner}, {"project", owned[0].project.name()}});
  }
  return absl::OkStatus();
}

void FillTeams(pqxx::transaction_base& tx, std::vector<v1::User*> users) {
  std::vector<std::string> names;
  std::map<std::string, v1::User*> by_name;
  for (auto* u : users) {
    std::string n = u->name().substr(6);
    names.push_back(n);
    by_name[n] = u;
  }
  for (const auto& m : PermissionStore::Memberships(tx, names)) {
    by_name[m.username]->add_teams("teams/" + m.team_id);
  }
}

absl::Status PublishUser(pqxx::work& tx, const v1::User& user, v1::Change change,
                         const CallInfo& call) {
  v1::UserChanged event;
  *event.mutable_user() = user;
  event.set_change(change);
  return Publish(tx, event, user.name(), call);
}

absl::Status PublishTeam(pqxx::work& tx, const std::string& team_id, v1::Change change,
                         const std::string& user, const CallInfo& call) {
  v1::TeamChanged event;
  event.set_team("teams/" + team_id);
  event.set_change(change);
  event.set_user(user);
  return Publish(tx, event, event.team(), call);
}

absl::Status PublishProject(pqxx::work& tx, const v1::Project& project, v1::Change change,
                            const CallInfo& call) {
  v1::ProjectChanged event;
  *event.mutable_project() = project;
  event.set_change(change);
  return Publish(tx, event, project.name(), call);
}

}  // namespace submarine::permission
