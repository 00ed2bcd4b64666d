#pragma once
// An in-memory gRPC backend implementing EnvironmentService and SubmarineEnvironmentApi, for
// gateway tests (a stand-in for the real environment service, not for its database). It records
// what the gateway sent (requests, x-request-id) and can hold calls to a given name until the
// test releases them. Thread-safe.

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "submarine/environment/v1/submarine_v1.grpc.pb.h"

namespace submarine::testing {

class EnvironmentBackend {
 public:
  // GetEnvironment of this name blocks until ReleaseHeld() (or the call's deadline).
  static constexpr char kHeldName[] = "projects/default/environments/held";
  // GetEnvironment of this name never answers before the call's deadline.
  static constexpr char kSlowName[] = "projects/default/environments/slow";
  // GetEnvironment of this name fails as a careless service would: INTERNAL with an ErrorInfo
  // whose message and metadata quote a database error (kLeakedText).
  static constexpr char kLeakyName[] = "projects/default/environments/leaky";
  static constexpr char kLeakedText[] =
      "database error 42601: ERROR:  syntax error at or near \"SELEC\" (pqxx::sql_error, "
      "std::terminate) at 10.9.8.7:5432";

  EnvironmentBackend();
  ~EnvironmentBackend();

  // Serves on `address` ("127.0.0.1:0" for any port) with grpc.health.v1; returns the address.
  absl::StatusOr<std::string> Start(const std::string& address = "127.0.0.1:0");
  void Stop();

  // The x-request-id of the last call, and the last List/Update requests received.
  std::string last_request_id() const;
  // Every metadata entry of the last call (keys lower-case), e.g. to see which principal the
  // gateway sent and that client credentials were not forwarded.
  std::multimap<std::string, std::string> last_metadata() const;
  submarine::environment::v1::ListEnvironmentsRequest last_list() const;
  submarine::environment::v1::UpdateEnvironmentRequest last_update() const;
  // How many calls to kHeldName are waiting.
  int held_calls() const;
  void ReleaseHeld();

 private:
  class Aip;
  class V1;
  friend class Aip;
  friend class V1;

  void Record(grpc::ServerContext* context);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, submarine::environment::v1::Environment> environments_;
  std::string last_request_id_;
  std::multimap<std::string, std::string> last_metadata_;
  submarine::environment::v1::ListEnvironmentsRequest last_list_;
  submarine::environment::v1::UpdateEnvironmentRequest last_update_;
  int held_ = 0;
  bool released_ = false;
  int next_uid_ = 1;
  std::unique_ptr<Aip> aip_;
  std::unique_ptr<V1> v1_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace submarine::testing
