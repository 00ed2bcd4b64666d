#pragma once
// AIP-155 request ids for every mutating RPC of every service: a client that retries a request
// with the same request_id gets the first answer back and the change happens once; a repeat that
// arrives while the first is still running waits for it; an id reused for a different request
// (another method, another caller, or other content) is refused with INVALID_ARGUMENT, reason
// REQUEST_ID_REUSED. Answers are kept in the schema's request_ids table (the "idempotency"
// migration series below, applied to every service schema by the service host) and forgotten
// after a retention period (Prune, run by the leader's housekeeping).
//
// Where requests or answers carry secrets (passwords, tokens), construct with a secret: request
// hashes are then keyed (HMAC-SHA-256, so a stored hash is no offline oracle for a password) and
// stored answers sealed (secretbox), so the table never holds a usable token.
//
// Thread-safe (stateless apart from the immutable keys).

#include <google/protobuf/message.h>

#include <functional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/db/migrations.h"
#include "common/db/pool.h"
#include "common/db/statement.h"
#include "common/rpc/call_context.h"

namespace submarine::api {

// The "idempotency" migration series (table request_ids), embedded from common/api/migrations.
std::vector<db::Migration> IdempotencyMigrations();

class Idempotency {
 public:
  // The statements that use request_ids.
  static const db::StatementSet& Statements();

  // A request id is empty (no idempotency) or at most 64 of [A-Za-z0-9_-] (a UUID fits);
  // INVALID_ARGUMENT naming `field` otherwise.
  static absl::Status Validate(const std::string& request_id,
                               const std::string& field = "request_id");

  // `secret` empty: plain SHA-256 request hashes and answers stored as they are.
  explicit Idempotency(const std::string& secret = "");

  // Runs one mutation `body` in one transaction of `pool` (with the call's deadline): the
  // request id's lock is taken first; if the id answered before, that answer is returned and
  // `body` does not run (REQUEST_ID_REUSED if it answered a different request); otherwise `body`
  // fills the answer and the answer is recorded in the same transaction as the change. Without
  // a request id it is a plain transaction. `body` may run more than once (Transact retries
  // serialization failures), so it must only touch the database.
  template <class Answer>
  absl::StatusOr<Answer> Run(db::ConnectionPool& pool, const rpc::CallInfo& call,
                             const std::string& method, const google::protobuf::Message& request,
                             const std::string& request_id,
                             const std::function<absl::Status(pqxx::work&, Answer*)>& body) const {
    Answer answer;
    SUBMARINE_RETURN_IF_ERROR(Transact(pool, call, method, request, request_id, &answer,
                                       [&](pqxx::work& tx) {
                                         answer.Clear();
                                         return body(tx, &answer);
                                       }));
    return answer;
  }

  // The same for a mutation written as one transaction that fills `*answer` itself (use
  // google::protobuf::Empty for a method that answers nothing): on a replay `*answer` is the
  // first answer and `body` does not run; otherwise `*answer` as `body` left it is recorded.
  absl::Status Transact(db::ConnectionPool& pool, const rpc::CallInfo& call,
                        const std::string& method, const google::protobuf::Message& request,
                        const std::string& request_id, google::protobuf::Message* answer,
                        const std::function<absl::Status(pqxx::work&)>& body) const {
    SUBMARINE_RETURN_IF_ERROR(Validate(request_id));
    std::string hash = request_id.empty() ? "" : Hash(method, call, request);
    return pool.Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
      SUBMARINE_ASSIGN_OR_RETURN(bool replayed, Replay(tx, request_id, method, hash, answer));
      if (replayed) return absl::OkStatus();
      SUBMARINE_RETURN_IF_ERROR(body(tx));
      Record(tx, request_id, method, hash, *answer);
      return absl::OkStatus();
    });
  }

  // For a mutation that checks things before its transaction (calls other services, hashes a
  // password): whether `request_id` already answered this request — then `*answer` is that
  // answer and the caller returns it without checking anything again. Call it first; the
  // mutation's own transaction still goes through Transact (which settles concurrent repeats).
  // REQUEST_ID_REUSED as for Run.
  absl::StatusOr<bool> Answered(db::ConnectionPool& pool, const rpc::CallInfo& call,
                                const std::string& method,
                                const google::protobuf::Message& request,
                                const std::string& request_id,
                                google::protobuf::Message* answer) const {
    SUBMARINE_RETURN_IF_ERROR(Validate(request_id));
    if (request_id.empty()) return false;
    std::string hash = Hash(method, call, request);
    bool replayed = false;
    SUBMARINE_RETURN_IF_ERROR(pool.Transact(call.deadline, [&](pqxx::work& tx) -> absl::Status {
      SUBMARINE_ASSIGN_OR_RETURN(replayed, Replay(tx, request_id, method, hash, answer));
      return absl::OkStatus();
    }));
    return replayed;
  }

  // Retention: forgets answers older than `hours`; returns how many.
  static absl::StatusOr<int64_t> Prune(db::ConnectionPool& pool, uint32_t hours);

 private:
  std::string Hash(const std::string& method, const rpc::CallInfo& call,
                   const google::protobuf::Message& request) const;
  // Takes the id's lock; OK(true) with `answer` filled when the id answered before.
  absl::StatusOr<bool> Replay(pqxx::work& tx, const std::string& request_id,
                              const std::string& method, const std::string& hash,
                              google::protobuf::Message* answer) const;
  void Record(pqxx::work& tx, const std::string& request_id, const std::string& method,
              const std::string& hash, const google::protobuf::Message& answer) const;

  std::string hash_key_;  // HMAC key; empty: plain SHA-256
  std::string seal_key_;  // secretbox key; empty: answers stored as they are
};

}  // namespace submarine::api
