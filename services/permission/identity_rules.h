#pragma once
// What the identity classes (SessionManager, UserManager, TeamManager, ProjectManager) share:
// the validation rules of their fields, the errors they answer with, and the events they write
// to the outbox (in the caller's transaction, so an event exists exactly when its change does).
// Internal to services/permission; stateless free functions, thread-safe.

#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/events/outbox.h"
#include "common/util/clock.h"
#include "services/permission/access_evaluator.h"
#include "submarine/common/v1/pagination.pb.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;
// Passwords: bytes accepted (a longer one is refused before any hashing).
inline constexpr size_t kMinPassword = 12;
inline constexpr size_t kMaxPassword = 1024;

// `clock`'s now as Unix microseconds.
int64_t NowMicros(const Clock& clock);
google::protobuf::Timestamp Ts(int64_t micros);

// Not-before instants are whole seconds rounded UP: a token carries "iat" in whole seconds, and a
// token issued after the change gets iat >= not_before (SessionManager raises iat to it), while
// every token issued before it has iat < not_before. The gateway refuses iat < not_before.
int64_t CeilSecondMicros(int64_t micros);

// INVALID_ARGUMENT naming `field` unless kMinPassword <= size <= kMaxPassword.
absl::Status CheckPassword(const std::string& password, const std::string& field);
// "" or one "@" with something on both sides and no spaces, at most 254 bytes.
absl::Status CheckEmail(const std::string& email, const std::string& field);

// ABORTED (reason ETAG_MISMATCH) naming the resource.
absl::Status EtagMismatch(const std::string& name);

// FAILED_PRECONDITION (reason OWNS_PROJECTS) while `owner` ("users/u" or "teams/t") still owns a
// project: a re-created namesake would inherit it.
absl::Status CheckOwnsNothing(pqxx::transaction_base& tx, const std::string& owner);

// Fills users[i].teams from the memberships table (one query).
void FillTeams(pqxx::transaction_base& tx, std::vector<v1::User*> users);

// Resumes a list kept in the order rows were created (their `seq`).
inline constexpr auto kAfterSeq = [](const auto& row, submarine::common::v1::PageToken* next) {
  next->set_after_id(row.seq);
};

// ---- events, appended to the outbox in `tx` with the call's request id and actor.
template <class Event>
absl::Status Publish(pqxx::work& tx, const Event& event, const std::string& resource,
                     const CallInfo& call) {
  return events::AppendToOutbox(tx, event, resource, call.request_id, call.subject);
}
absl::Status PublishUser(pqxx::work& tx, const v1::User& user, v1::Change change,
                         const CallInfo& call);
// `user` is the member concerned ("users/u"), or "".
absl::Status PublishTeam(pqxx::work& tx, const std::string& team_id, v1::Change change,
                         const std::string& user, const CallInfo& call);
absl::Status PublishProject(pqxx::work& tx, const v1::Project& project, v1::Change change,
                            const CallInfo& call);

}  // namespace submarine::permission
