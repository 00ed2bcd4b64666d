#include "common/api/idempotency.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "common/status/status.h"

namespace submarine::api {
namespace {

constexpr db::Statement kLock{
    "idempotency.lock",
    "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '.request_id.' || $1, 0))"};
constexpr db::Statement kFind{
    "idempotency.find",
    "SELECT method, request_hash, response FROM request_ids WHERE request_id = $1"};
constexpr db::Statement kSave{
    "idempotency.save",
    "INSERT INTO request_ids (request_id, method, request_hash, response) VALUES ($1, $2, $3, $4)"};
constexpr db::Statement kPrune{
    "idempotency.prune",
    "DELETE FROM request_ids WHERE request_id IN (SELECT request_id FROM request_ids "
    "WHERE created_at < now() - $1::bigint * INTERVAL '1 hour' ORDER BY created_at LIMIT 10000)"};

std::string Deterministic(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

}  // namespace

const db::StatementSet& Idempotency::Statements() {
  static const auto* set = new db::StatementSet{kLock, kFind, kSave, kPrune};
  return *set;
}

absl::Status Idempotency::Validate(const std::string& request_id, const std::string& field) {
  if (request_id.size() > 64) return InvalidField(field, "longer than 64 characters");
  for (char c : request_id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return InvalidField(field, "use a UUID ([A-Za-z0-9_-], at most 64)");
  }
  return absl::OkStatus();
}

Idempotency::Idempotency(const std::string& secret) {
  if (secret.empty()) return;
  hash_key_ = auth::HmacSha256(secret, "submarine-idempotency-hash-v1");
  seal_key_ = auth::HmacSha256(secret, "submarine-idempotency-seal-v1");
}

std::string Idempotency::Hash(const std::string& method, const rpc::CallInfo& call,
                              const google::protobuf::Message& request) const {
  // The caller is part of what was asked: another caller presenting the same id is refused
  // rather than handed someone else's answer.
  std::string input = absl::StrCat(method, "\n", call.subject, "\n", Deterministic(request));
  if (hash_key_.empty()) return auth::Sha256Hex(input);
  return auth::Base64UrlEncode(auth::HmacSha256(hash_key_, input));
}

absl::StatusOr<bool> Idempotency::Replay(pqxx::work& tx, const std::string& request_id,
                                         const std::string& method, const std::string& hash,
                                         google::protobuf::Message* answer) const {
  if (request_id.empty()) return false;
  db::Exec(tx, kLock, request_id);
  auto rows = db::Exec(tx, kFind, request_id);
  if (rows.empty()) return false;
  if (rows[0][0].as<std::string>() != method || rows[0][1].as<std::string>() != hash) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, "REQUEST_ID_REUSED",
        absl::StrCat("request_id: \"", request_id, "\" was already used for a different request"),
        {{"field", "request_id"}, {"requestId", request_id}});
  }
  std::string stored = pqxx::binarystring(rows[0][2]).str();
  if (!seal_key_.empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(stored, auth::Open(seal_key_, stored));
  }
  if (!answer->ParseFromString(stored)) return Internal("a stored answer is unreadable");
  return true;
}

void Idempotency::Record(pqxx::work& tx, const std::string& request_id, const std::string& method,
                         const std::string& hash, const google::protobuf::Message& answer) const {
  if (request_id.empty()) return;
  std::string bytes = answer.SerializeAsString();
  if (!seal_key_.empty()) bytes = auth::Seal(seal_key_, bytes);
  db::Exec(tx, kSave, request_id, method, hash, pqxx::binarystring(bytes));
}

absl::StatusOr<int64_t> Idempotency::Prune(db::ConnectionPool& pool, uint32_t hours) {
  int64_t total = 0;
  for (;;) {
    int64_t deleted = 0;
    SUBMARINE_RETURN_IF_ERROR(pool.Transact(db::kNoDeadline, [&](pqxx::work& tx) {
      deleted = db::Exec(tx, kPrune, static_cast<int64_t>(hours)).affected_rows();
      return absl::OkStatus();
    }));
    total += deleted;
    if (deleted < 10000) return total;
  }
}

}  // namespace submarine::api
