#include "services/permission/credential_manager.h"

#include <google/protobuf/empty.pb.h>

#include <set>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "common/events/outbox.h"
#include "common/status/status.h"
#include "services/permission/access_evaluator.h"
#include "services/permission/credential_store.h"
#include "services/permission/permission_errors.h"

namespace submarine::permission {
namespace {

using v1::Credential;

constexpr size_t kMaxDescription = 4096;

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsUsername(const std::string& u) {
  if (u.empty() || u.size() > 63 || !IsLower(u[0])) return false;
  for (char c : u) {
    if (!IsLower(c) && !IsDigit(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool IsCredentialId(const std::string& id) {
  if (id.empty() || id.size() > 63 || !IsLower(id[0])) return false;
  for (char c : id) {
    if (!IsLower(c) && !IsDigit(c) && c != '-') return false;
  }
  return true;
}

// The services a platform credential's plain secret is released to (they build the compute
// clusters' backends).
constexpr const char* kPlatformSecretReaders[] = {"experiment", "notebook", "serving"};

// "users/{u}" → u; "platform" → "" (CredentialStore's platform owner).
absl::StatusOr<std::string> ParseParent(const std::string& parent) {
  if (parent.empty()) return InvalidField("parent", "is required (\"users/{user}\")");
  if (parent == CredentialStore::kPlatformParent) return std::string();
  if (parent.rfind("users/", 0) != 0 || !IsUsername(parent.substr(6))) {
    return InvalidField(
        "parent", absl::StrCat("expected \"users/{user}\", got \"", parent.substr(0, 100), "\""));
  }
  return parent.substr(6);
}

// "users/{u}/credentials/{id}" → (u, id).
absl::StatusOr<std::pair<std::string, std::string>> ParseName(const std::string& name) {
  if (name.empty()) return InvalidField("name", "is required (\"users/{user}/credentials/{id}\")");
  auto bad = [&] {
    return InvalidField("name", absl::StrCat("expected \"users/{user}/credentials/{id}\" or "
                                             "\"platform/credentials/{id}\", got \"",
                                             name.substr(0, 100), "\""));
  };
  constexpr std::string_view kMid = "/credentials/";
  const std::string platform = std::string(CredentialStore::kPlatformParent) + std::string(kMid);
  if (name.rfind(platform, 0) == 0) {
    std::string id = name.substr(platform.size());
    if (!IsCredentialId(id)) return bad();
    return std::make_pair(std::string(), id);
  }
  size_t mid = name.find(kMid);
  if (name.rfind("users/", 0) != 0 || mid == std::string::npos) return bad();
  std::string user = name.substr(6, mid - 6);
  std::string id = name.substr(mid + kMid.size());
  if (!IsUsername(user) || !IsCredentialId(id)) return bad();
  return std::make_pair(user, id);
}

// The credentials of `owner` may be managed by the owner (directly or through a service acting
// for them) and by admins (Caller::MayManageUser). Decided before existence: NOT_FOUND only for
// a caller who may manage them, when the owner does not exist.
absl::Status Authorize(pqxx::transaction_base& tx, const rpc::CallInfo& call,
                       const std::string& owner, const std::string& resource) {
  SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
  if (owner.empty()) {
    if (caller.admin) return absl::OkStatus();
    return CallerMayNot(call, "manage platform credentials (administrators only)", resource);
  }
  if (!caller.MayManageUser(owner)) {
    return CallerMayNot(call, "manage the credentials of users/" + owner, resource);
  }
  if (!caller.is(owner) && !CredentialStore::FindAccount(tx, owner)) {
    return NotFound("user", "users/" + owner);
  }
  return absl::OkStatus();
}

}  // namespace

CredentialManager::CredentialManager(db::ConnectionPool* pool,
                                     const api::Idempotency* idempotency, std::string master_key,
                                     const Clock& clock)
    : pool_(pool), idempotency_(idempotency), master_key_(std::move(master_key)), clock_(clock) {}

absl::Status CredentialManager::CheckKey() const {
  if (master_key_.size() != 32) return Internal("the credential master key is not 32 bytes");
  return absl::OkStatus();
}

int64_t CredentialManager::NowMicros() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_.Now().time_since_epoch())
      .count();
}

absl::StatusOr<Credential> CredentialManager::Create(const v1::CreateCredentialRequest& req,
                                                     const rpc::CallInfo& call) {
  SUBMARINE_RETURN_IF_ERROR(CheckKey());
  SUBMARINE_ASSIGN_OR_RETURN(std::string owner, ParseParent(req.parent()));
  if (!IsCredentialId(req.credential_id())) {
    return InvalidField("credential_id", "credential ids match [a-z][a-z0-9-]{0,62}");
  }
  static const std::set<std::string> kTypes = {"git-token", "s3-keys", "kerberos-keytab",
                                               "kubeconfig", "generic"};
  const Credential& in = req.credential();
  if (!kTypes.count(in.type())) {
    return InvalidField("credential.type",
                        "must be one of git-token, s3-keys, kerberos-keytab, kubeconfig, generic");
  }
  if (in.description().size() > kMaxDescription) {
    return InvalidField("credential.description",
                        absl::StrCat("longer than ", kMaxDescription, " characters"));
  }
  for (unsigned char c : in.description()) {
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      return InvalidField("credential.description", "contains control characters");
    }
  }
  if (req.secret().empty()) return InvalidField("secret", "is required");
  if (req.secret().size() > kMaxSecretBytes) {
    return InvalidField("secret", absl::StrCat("larger than ", kMaxSecretBytes, " bytes"));
  }
  std::string name = absl::StrCat(req.parent(), "/credentials/", req.credential_id());
  // Sealed before the transaction: the plain secret never reaches the database layer.
  std::string sealed = auth::Seal(master_key_, req.secret());
  int64_t now = NowMicros();
  Credential out;
  SUBMARINE_RETURN_IF_ERROR(idempotency_->Transact(
      *pool_, call, "CreateCredential", req, req.request_id(), &out,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_RETURN_IF_ERROR(Authorize(tx, call, owner, name));
    out.set_name(name);
    out.set_type(in.type());
    out.set_description(in.description());
    bool created = CredentialStore::Upsert(tx, owner, req.credential_id(), &out, sealed, now);
    v1::CredentialChanged event;
    *event.mutable_credential() = out;
    event.set_change(created ? v1::CREATED : v1::UPDATED);
    return events::AppendToOutbox(tx, event, name, call.request_id, call.subject);
  }));
  return out;
}

absl::StatusOr<Credential> CredentialManager::Get(const v1::GetCredentialRequest& req,
                                                  const rpc::CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(auto parts, ParseName(req.name()));
  Credential out;
  SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    SUBMARINE_RETURN_IF_ERROR(Authorize(tx, call, parts.first, req.name()));
    auto found = CredentialStore::Find(tx, parts.first, parts.second);
    if (!found) return NotFound("credential", req.name());
    out = std::move(found->credential);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<v1::ListCredentialsResponse> CredentialManager::List(
    const v1::ListCredentialsRequest& req, const rpc::CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string owner, ParseParent(req.parent()));
  v1::ListCredentialsResponse resp;
  SUBMARINE_RETURN_IF_ERROR(pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
    SUBMARINE_RETURN_IF_ERROR(Authorize(tx, call, owner, req.parent()));
    for (auto& c : CredentialStore::List(tx, owner)) *resp.add_credentials() = std::move(c);
    return absl::OkStatus();
  }));
  return resp;
}

absl::Status CredentialManager::Delete(const v1::DeleteCredentialRequest& req,
                                       const rpc::CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(auto parts, ParseName(req.name()));
  google::protobuf::Empty done;
  return idempotency_->Transact(
      *pool_, call, "DeleteCredential", req, req.request_id(), &done,
      [&](pqxx::work& tx) -> absl::Status {
    SUBMARINE_RETURN_IF_ERROR(Authorize(tx, call, parts.first, req.name()));
    auto found = CredentialStore::Find(tx, parts.first, parts.second);
    if (!found || !CredentialStore::Delete(tx, parts.first, parts.second)) {
      return NotFound("credential", req.name());
    }
    v1::CredentialChanged event;
    *event.mutable_credential() = found->credential;
    event.set_change(v1::DELETED);
    return events::AppendToOutbox(tx, event, req.name(), call.request_id, call.subject);
  });
}

absl::StatusOr<v1::AccessCredentialSecretResponse> CredentialManager::AccessSecret(
    const v1::AccessCredentialSecretRequest& req, const rpc::CallInfo& call) {
  SUBMARINE_ASSIGN_OR_RETURN(auto parts, ParseName(req.name()));
  SUBMARINE_RETURN_IF_ERROR(CheckKey());
  v1::AccessCredentialSecretResponse resp;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
    // The caller acts for an existing, enabled user (ResolveCaller); the secret goes only to a
    // service acting for its owner (internal_only already keeps USER principals out).
    SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
    if (parts.first.empty()) {
      if (!caller.service ||
          !absl::c_linear_search(kPlatformSecretReaders, call.principal.service())) {
        return CallerMayNot(call,
                            "read platform secrets (only the experiment, notebook and serving "
                            "services may)",
                            req.name());
      }
    } else if (!caller.ReceivesSecretsOf(parts.first)) {
      return CallerMayNot(call,
                          absl::StrCat("read secrets of users/", parts.first,
                                       " (only a service acting for that user may)"),
                          req.name());
    }
    auto found = CredentialStore::Find(tx, parts.first, parts.second);
    if (!found) return NotFound("credential", req.name());
    auto plain = auth::Open(master_key_, found->sealed);
    if (!plain.ok()) {
      return MakeError(absl::StatusCode::kInternal, "CREDENTIAL_UNREADABLE",
                       absl::StrCat("credential \"", req.name(),
                                    "\" cannot decrypt under the current master key"),
                       {{"resource", req.name()}});
    }
    *resp.mutable_credential() = std::move(found->credential);
    resp.set_secret(*std::move(plain));
    v1::CredentialAccessed event;
    event.set_credential(req.name());
    event.set_service(call.principal.service());
    return events::AppendToOutbox(tx, event, req.name(), call.request_id, call.subject);
  }));
  return resp;
}

}  // namespace submarine::permission
