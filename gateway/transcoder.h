#pragma once
// JSON/YAML <-> proto transcoding for one route, and the error bodies of both REST faces:
//   AIP-193 (default): {"error":{"code":<http>,"message":...,"status":"NOT_FOUND","details":[...]}}
//   REST_FACE_SUBMARINE_V1: {"status":"NOT_FOUND","code":404,"success":null,"message":...,
//                            "result":null,"attributes":{}}
// Stateless; every function is thread-safe.

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gateway/route_table.h"

namespace submarine::gateway {

// The ErrorInfo domain of errors the gateway raises itself.
inline constexpr char kGatewayDomain[] = "gateway.submarine.io";

struct HttpReply {
  int status = 200;
  std::string body;  // JSON, or the raw data of a google.api.HttpBody answer
  std::string content_type = "application/json";
};

// Fills `request` (an empty instance of the route's input type) from, in this order: the body
// (route.body "*" or a field; empty, whitespace or `null` means the field stays absent; YAML
// when `content_type` is application/yaml, text/yaml or application/x-yaml, JSON otherwise;
// unknown fields rejected), the query string (proto or lowerCamel names, dotted paths into
// nested messages, repeated parameters appended; on the REST_FACE_SUBMARINE_V1 face unknown
// parameters are ignored, as Jersey does) and the path bindings (which win over both).
// Errors are INVALID_ARGUMENT with an ErrorInfo (domain kGatewayDomain) whose reason is
// UNKNOWN_FIELD, INVALID_REQUEST_BODY, BODY_NOT_ALLOWED, UNKNOWN_QUERY_PARAMETER,
// INVALID_QUERY_PARAMETER or INVALID_PATH_PARAMETER, whose message names the field or parameter
// and whose metadata `field` names the request field (lowerCamel path; an unknown parameter as
// written). A value that is not valid UTF-8 is an invalid parameter. Input appears in messages
// and metadata only through QuoteInput().
absl::Status BuildRequest(const Route& route, const api::PathBindings& bindings,
                          std::string_view query, std::string_view body,
                          std::string_view content_type, google::protobuf::Message* request);

// A route with raw_request takes the body as it is: `data` and `content_type` of the HttpBody
// (the request itself, or its body field); the query string and path bindings then fill the
// request's other fields as usual.
//
// Renders a backend's serialized response (consumes `response`). A route with raw_response:
// the HttpBody's data with its content_type (application/octet-stream when it names none),
// HTTP 200. AIP face: proto JSON with
// lowerCamel names, default values omitted, HTTP 200. Submarine v1 face: every top-level field
// printed in declaration order (unset google.protobuf.Value fields as null, unset Struct as {}),
// HTTP status from the response's `code` field (400 when it is not a valid HTTP status).
// INTERNAL if the bytes do not parse as the route's output type.
absl::StatusOr<HttpReply> RenderResponse(const Route& route, grpc::ByteBuffer* response);

// Renders an error for `face`. The HTTP status is `http_status` if non-zero, else the AIP-193
// mapping of the gRPC code. The message is cut to kMaxErrorMessageBytes of valid UTF-8. AIP face
// details are the google.rpc.Status details decoded from grpc-status-details-bin (an ErrorInfo with
// reason = code name is added when there are none).
HttpReply RenderError(submarine::common::v1::RestFace face, const grpc::Status& status,
                      int http_status = 0);
// Same for a status raised inside the gateway (its ErrorInfo gets domain kGatewayDomain).
HttpReply RenderError(submarine::common::v1::RestFace face, const absl::Status& status,
                      int http_status = 0);

// The javax.ws.rs Response.Status name Apache Submarine prints for an HTTP status, e.g. 404 →
// "NOT_FOUND", 400 → "BAD_REQUEST".
std::string HttpStatusName(int http_status);

}  // namespace submarine::gateway
