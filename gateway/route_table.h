#pragma once
// REST routes derived from the google.api.http options of gRPC services found by name in the
// generated descriptor pool: one Route per HttpRule (and per additional binding). Nothing here is
// written per endpoint. Immutable after Build(); Find() is thread-safe.

#include <google/protobuf/descriptor.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/api/resource_name.h"
#include "gateway/message_fields.h"
#include "submarine/common/v1/options.pb.h"

namespace submarine::gateway {

struct Route {
  std::string http_method;  // "GET", "POST", "PATCH", "DELETE", "PUT" or a custom verb
  api::PathTemplate path;
  // "" (no body), "*" (the whole request message) or a top-level request field name.
  std::string body;
  const google::protobuf::FieldDescriptor* body_field = nullptr;  // set when body names a field
  // Request fields bound by the path, in template order (parallel to path.variables()).
  std::vector<FieldPath> path_fields;
  // If set, only this top-level response field is rendered (HttpRule.response_body).
  const google::protobuf::FieldDescriptor* response_body_field = nullptr;
  const google::protobuf::MethodDescriptor* method = nullptr;
  std::string grpc_method;  // "/package.Service/Method"
  submarine::common::v1::RestFace face = submarine::common::v1::REST_FACE_UNSPECIFIED;
  std::string label;  // "GET /v1/{name=projects/*/environments/*}", used as a metrics label
  // The method has (submarine.common.v1.auth_exempt): served without a token.
  bool auth_exempt = false;
  // google.api.HttpBody: the request body (body "*" of an HttpBody request, or a body field of
  // that type) is taken raw — its bytes as `data`, its Content-Type as `content_type` — and the
  // response (an HttpBody output, or response_body naming an HttpBody field) is sent raw with
  // the message's content type; a server-streaming one as one chunk per message.
  bool raw_request = false;
  bool raw_response = false;
  // A client-streaming method with a raw request (an upload): the body is read as it arrives and
  // sent as a stream of request messages of at most kUploadChunkBytes of data each; the first
  // carries the path and query bindings and the HttpBody's content_type, the later ones only
  // data (see Gateway::RestUpload).
  bool streamed_request = false;
  // (submarine.common.v1.max_body_bytes); 0: the gateway's max_body_bytes, or no limit for a
  // streamed request.
  uint64_t max_body_bytes = 0;
};

// "google.api.HttpBody".
inline constexpr char kHttpBodyType[] = "google.api.HttpBody";

// The most body bytes one request message of a streamed upload carries: well below gRPC's
// message limit (rpc::kMaxMessageBytes), and the unit of the gateway's memory per upload.
inline constexpr size_t kUploadChunkBytes = size_t{1} << 20;

class RouteTable {
 public:
  enum class Outcome { kMatched, kNotFound, kMethodNotAllowed };
  struct Match {
    const Route* route = nullptr;
    api::PathBindings bindings;
  };

  // Builds the routes of every named service. INVALID_ARGUMENT/NOT_FOUND naming the service or
  // method if a service is not in the generated pool, a template does not parse, a path variable
  // or body does not name a suitable request field (for a client-streaming method: the request
  // is not a google.api.HttpBody taken whole with body "*", nor has exactly one HttpBody field
  // named by body), or two routes have the same method and template. Methods without an http
  // option, bidi-streaming methods and methods marked (submarine.common.v1.internal_only) get no
  // route. Services are looked up in `pool` (tests
  // pass their own; the gateway uses the generated pool).
  static absl::StatusOr<RouteTable> Build(const std::vector<std::string>& services,
                                          const google::protobuf::DescriptorPool* pool =
                                              google::protobuf::DescriptorPool::generated_pool());

  // Finds the route for a request. kMatched fills `match` (the most specific template wins:
  // most literal segments, then declaration order); kMethodNotAllowed fills `allowed` with the
  // methods whose templates match the path; kNotFound otherwise.
  Outcome Find(std::string_view http_method, std::string_view path, Match* match,
               std::vector<std::string>* allowed) const;

  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace submarine::gateway
