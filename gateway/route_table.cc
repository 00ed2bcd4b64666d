#include "gateway/route_table.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/server_runner.h"
#include "common/status/status.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"

namespace submarine::gateway {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;

absl::Status RuleError(const MethodDescriptor* method, const std::string& problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("google.api.http of ", method->full_name(), ": ", problem));
}

absl::StatusOr<std::unique_ptr<Route>> MakeRoute(const MethodDescriptor* method,
                                                 const google::api::HttpRule& rule,
                                                 submarine::common::v1::RestFace face) {
  auto route = std::make_unique<Route>();
  std::string path;
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet:
      route->http_method = "GET";
      path = rule.get();
      break;
    case google::api::HttpRule::kPut:
      route->http_method = "PUT";
      path = rule.put();
      break;
    case google::api::HttpRule::kPost:
      route->http_method = "POST";
      path = rule.post();
      break;
    case google::api::HttpRule::kDelete:
      route->http_method = "DELETE";
      path = rule.delete_();
      break;
    case google::api::HttpRule::kPatch:
      route->http_method = "PATCH";
      path = rule.patch();
      break;
    case google::api::HttpRule::kCustom:
      route->http_method = rule.custom().kind();
      path = rule.custom().path();
      break;
    default:
      return RuleError(method, "no HTTP pattern");
  }
  auto parsed = api::PathTemplate::Parse(path);
  if (!parsed.ok()) return RuleError(method, submarine::Message(parsed.status()));
  route->path = std::move(parsed).value();
  const auto* request = method->input_type();
  for (const auto& var : route->path.variables()) {
    auto fields = ResolveFieldPath(request, var.field_path);
    if (!fields.ok()) return RuleError(method, submarine::Message(fields.status()));
    const FieldDescriptor* leaf = fields->back();
    if (leaf->is_repeated() || !IsTextSettable(leaf)) {
      return RuleError(method, absl::StrCat("path variable '", var.field_path,
                                            "' is not a singular scalar field"));
    }
    route->path_fields.push_back(std::move(fields).value());
  }
  route->body = rule.body();
  if (!route->body.empty() && route->body != "*") {
    route->body_field = request->FindFieldByName(route->body);
    if (route->body_field == nullptr || route->body_field->is_repeated()) {
      return RuleError(method, absl::StrCat("body '", route->body,
                                            "' is not a singular top-level request field"));
    }
  }
  if (!rule.response_body().empty()) {
    route->response_body_field = method->output_type()->FindFieldByName(rule.response_body());
    if (route->response_body_field == nullptr) {
      return RuleError(method,
                       absl::StrCat("response_body '", rule.response_body(), "' is not a field"));
    }
  }
  route->method = method;
  route->grpc_method = absl::StrCat("/", method->service()->full_name(), "/", method->name());
  route->face = face;
  route->label = absl::StrCat(route->http_method, " ", path);
  route->auth_exempt = method->options().GetExtension(submarine::common::v1::auth_exempt);
  route->max_body_bytes = method->options().GetExtension(submarine::common::v1::max_body_bytes);
  route->streamed_request = method->client_streaming();
  // A whole request must still fit one gRPC message to the service (some bytes for its other
  // fields); a streamed one is cut into messages of kUploadChunkBytes.
  static_assert(kUploadChunkBytes <= static_cast<size_t>(rpc::kMaxMessageBytes) - (64 << 10));
  if (!route->streamed_request &&
      route->max_body_bytes > static_cast<uint64_t>(rpc::kMaxMessageBytes) - (64 << 10)) {
    return RuleError(
        method, absl::StrCat("max_body_bytes ", route->max_body_bytes,
                             " does not fit a gRPC message (", rpc::kMaxMessageBytes, " bytes)"));
  }
  auto is_http_body = [](const google::protobuf::Descriptor* type) {
    return type != nullptr && type->full_name() == kHttpBodyType;
  };
  route->raw_request =
      (route->body == "*" && is_http_body(request)) ||
      (route->body_field != nullptr && is_http_body(route->body_field->message_type()));
  if (route->streamed_request) {
    // A request stream has no JSON form: only raw bytes can be cut into messages.
    int http_body_fields = 0;
    for (int i = 0; i < request->field_count(); ++i) {
      if (is_http_body(request->field(i)->message_type())) ++http_body_fields;
    }
    const bool whole = route->body == "*" && is_http_body(request);
    const bool field = route->body_field != nullptr && http_body_fields == 1 &&
                       is_http_body(route->body_field->message_type());
    if (!whole && !field) {
      return RuleError(method,
                       "a client-streaming method needs body \"*\" with a google.api.HttpBody "
                       "request, or body naming the request's only google.api.HttpBody field");
    }
  }
  route->raw_response = route->response_body_field == nullptr
                            ? is_http_body(method->output_type())
                            : is_http_body(route->response_body_field->message_type());
  return route;
}

}  // namespace

absl::StatusOr<RouteTable> RouteTable::Build(const std::vector<std::string>& services,
                                             const google::protobuf::DescriptorPool* pool) {
  RouteTable table;
  std::set<std::string> seen;
  for (const auto& name : services) {
    const auto* service = pool->FindServiceByName(name);
    if (service == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("service ", name, " is not linked into the gateway (no descriptor)"));
    }
    auto face = service->options().GetExtension(submarine::common::v1::rest_face);
    for (int i = 0; i < service->method_count(); ++i) {
      const MethodDescriptor* method = service->method(i);
      // A server-streaming method is answered as a stream (NDJSON or server-sent events), a
      // client-streaming one reads a raw body as a stream (an upload); HTTP/1.1 has no form for
      // both at once.
      if (method->client_streaming() && method->server_streaming()) continue;
      if (!method->options().HasExtension(google::api::http)) continue;
      // Service-to-service methods are not part of the public API, whatever their options say.
      if (method->options().GetExtension(submarine::common::v1::internal_only)) continue;
      const auto& rule = method->options().GetExtension(google::api::http);
      std::vector<const google::api::HttpRule*> rules = {&rule};
      for (const auto& extra : rule.additional_bindings()) rules.push_back(&extra);
      for (const auto* r : rules) {
        SUBMARINE_ASSIGN_OR_RETURN(auto route, MakeRoute(method, *r, face));
        if (!seen.insert(route->label).second) {
          return RuleError(method, absl::StrCat("route ", route->label, " is declared twice"));
        }
        table.routes_.push_back(std::move(route));
      }
    }
  }
  return table;
}

RouteTable::Outcome RouteTable::Find(std::string_view http_method, std::string_view path,
                                     Match* match, std::vector<std::string>* allowed) const {
  int best = -1;
  bool path_known = false;
  for (const auto& route : routes_) {
    api::PathBindings bindings;
    if (!route->path.Match(path, &bindings)) continue;
    if (route->http_method != http_method) {
      path_known = true;
      if (allowed != nullptr &&
          std::find(allowed->begin(), allowed->end(), route->http_method) == allowed->end()) {
        allowed->push_back(route->http_method);
      }
      continue;
    }
    int score = route->path.Specificity();
    if (score > best) {
      best = score;
      match->route = route.get();
      match->bindings = std::move(bindings);
    }
  }
  if (best >= 0) return Outcome::kMatched;
  return path_known ? Outcome::kMethodNotAllowed : Outcome::kNotFound;
}

}  // namespace submarine::gateway
