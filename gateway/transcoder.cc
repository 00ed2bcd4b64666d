#include "gateway/transcoder.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using submarine::common::v1::REST_FACE_SUBMARINE_V1;
using submarine::common::v1::RestFace;

constexpr char kCannotFindField[] = ": Cannot find field.";

std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IsYaml(std::string_view content_type) {
  std::string type(Trim(content_type.substr(0, content_type.find(';'))));
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return type == "application/yaml" || type == "text/yaml" || type == "application/x-yaml";
}

// Turns protobuf's JSON parser error into a user-facing one naming the field.
absl::Status BodyError(const std::string& parser_message) {
  std::string msg = parser_message;
  if (msg.size() > strlen(kCannotFindField) &&
      msg.compare(msg.size() - strlen(kCannotFindField), std::string::npos, kCannotFindField) ==
          0) {
    std::string where = msg.substr(0, msg.size() - strlen(kCannotFindField));
    std::string field = where;
    if (!where.empty() && where.front() == '(') {
      size_t close = where.find(") ");
      if (close != std::string::npos) {
        field = absl::StrCat(where.substr(1, close - 1), ".", where.substr(close + 2));
      }
    }
    field = QuoteInput(field);
    return MakeError(absl::StatusCode::kInvalidArgument, "UNKNOWN_FIELD",
                     absl::StrCat("Unknown field \"", field, "\" in the request body"),
                     {{"field", field}});
  }
  // The parser's words may quote the body.
  msg = QuoteInput(msg);
  return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_REQUEST_BODY",
                   absl::StrCat("Invalid request body: ", msg), {{"problem", msg}});
}

absl::Status ParseJsonInto(const std::string& json, Message* target) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(json, target, options);
  if (!st.ok()) return BodyError(st.message().as_string());
  return absl::OkStatus();
}

absl::Status ApplyBody(const Route& route, std::string_view body, std::string_view content_type,
                       Message* request) {
  if (route.raw_request) {
    Message* http_body = route.body_field == nullptr
                             ? request
                             : request->GetReflection()->MutableMessage(request, route.body_field);
    const Descriptor* type = http_body->GetDescriptor();
    const google::protobuf::Reflection* reflection = http_body->GetReflection();
    reflection->SetString(http_body, type->FindFieldByName("content_type"),
                          std::string(content_type));
    reflection->SetString(http_body, type->FindFieldByName("data"), std::string(body));
    return absl::OkStatus();
  }
  std::string_view trimmed = Trim(body);
  if (route.body.empty()) {
    if (trimmed.empty()) return absl::OkStatus();
    return MakeError(absl::StatusCode::kInvalidArgument, "BODY_NOT_ALLOWED",
                     absl::StrCat(route.label, " takes no request body"), {{"route", route.label}});
  }
  if (trimmed.empty() || trimmed == "null") return absl::OkStatus();
  // JSON and YAML are UTF-8 (RFC 8259, YAML 1.2), as every protobuf string must be; the parsers'
  // own complaints about it would quote the bytes.
  if (!IsValidUtf8(std::string(body))) {
    return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_REQUEST_BODY",
                     "Invalid request body: it is not valid UTF-8", {{"problem", "not UTF-8"}});
  }
  std::string json;
  if (IsYaml(content_type)) {
    auto converted = config::YamlToJson(body);
    if (!converted.ok()) {
      // The YAML parser's words may quote the body.
      std::string problem = QuoteInput(submarine::Message(converted.status()));
      return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_REQUEST_BODY",
                       absl::StrCat("Invalid YAML request body: ", problem),
                       {{"problem", problem}});
    }
    json = std::move(converted).value();
    if (Trim(json).empty() || Trim(json) == "null") return absl::OkStatus();
  } else {
    json = std::string(body);
  }
  if (route.body_field == nullptr) return ParseJsonInto(json, request);
  if (route.body_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    return ParseJsonInto(json, request->GetReflection()->MutableMessage(request, route.body_field));
  }
  return ParseJsonInto(absl::StrCat("{\"", route.body_field->json_name(), "\":", json, "}"),
                       request);
}

bool SameFields(const FieldPath& a, const FieldPath& b) { return a == b; }

absl::Status ApplyQuery(const Route& route, std::string_view query, Message* request) {
  const Descriptor* type = request->GetDescriptor();
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key = api::PercentDecode(pair.substr(0, eq), true);
    std::string value = eq == std::string_view::npos
                            ? std::string()
                            : api::PercentDecode(pair.substr(eq + 1), true);
    auto fields = ResolveFieldPath(type, key);
    if (!fields.ok()) {
      if (route.face == REST_FACE_SUBMARINE_V1) continue;
      const std::string quoted = QuoteInput(key);
      return MakeError(absl::StatusCode::kInvalidArgument, "UNKNOWN_QUERY_PARAMETER",
                       absl::StrCat("Unknown query parameter \"", quoted, "\""),
                       {{"parameter", quoted}, {"field", quoted}});
    }
    const std::string quoted = QuoteInput(key);
    const std::string field = JsonPathName(*fields);
    bool from_body =
        route.body == "*" || (route.body_field != nullptr && fields->front() == route.body_field);
    if (from_body || !IsTextSettable(fields->back())) {
      return MakeError(
          absl::StatusCode::kInvalidArgument, "INVALID_QUERY_PARAMETER",
          absl::StrCat("Query parameter \"", quoted, "\" cannot be set here: ",
                       from_body ? "it belongs to the request body" : "it is not a scalar field"),
          {{"parameter", quoted}, {"field", field}});
    }
    bool bound_by_path = false;
    for (const auto& p : route.path_fields) bound_by_path = bound_by_path || SameFields(p, *fields);
    if (bound_by_path) continue;
    Message* parent = MutableLeafParent(request, *fields);
    auto st = SetFieldFromText(parent, fields->back(), value);
    if (!st.ok()) {
      const std::string quoted_value = QuoteInput(value);
      return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_QUERY_PARAMETER",
                       absl::StrCat("Invalid value \"", quoted_value, "\" for query parameter \"",
                                    quoted, "\": ", submarine::Message(st)),
                       {{"parameter", quoted}, {"field", field}, {"value", quoted_value}});
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyPath(const Route& route, const api::PathBindings& bindings, Message* request) {
  for (size_t i = 0; i < bindings.size() && i < route.path_fields.size(); ++i) {
    const FieldPath& fields = route.path_fields[i];
    Message* parent = MutableLeafParent(request, fields);
    auto st = SetFieldFromText(parent, fields.back(), bindings[i].second);
    if (!st.ok()) {
      const std::string value = QuoteInput(bindings[i].second);
      return MakeError(
          absl::StatusCode::kInvalidArgument, "INVALID_PATH_PARAMETER",
          absl::StrCat("Invalid value \"", value, "\" for path parameter \"", bindings[i].first,
                       "\": ", submarine::Message(st)),
          {{"parameter", bindings[i].first}, {"field", JsonPathName(fields)}, {"value", value}});
    }
  }
  return absl::OkStatus();
}

// Unset top-level Value fields become JSON null, Struct/ListValue fields {} / [], so the v1
// envelope always carries every member, as Gson's serializeNulls() did.
void FillEnvelopeNulls(Message* message) {
  const Descriptor* type = message->GetDescriptor();
  const auto* reflection = message->GetReflection();
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* f = type->field(i);
    if (f->is_repeated() || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE ||
        reflection->HasField(*message, f)) {
      continue;
    }
    const std::string& name = f->message_type()->full_name();
    if (name == "google.protobuf.Value") {
      auto* value = static_cast<google::protobuf::Value*>(reflection->MutableMessage(message, f));
      value->set_null_value(google::protobuf::NULL_VALUE);
    } else if (name == "google.protobuf.Struct" || name == "google.protobuf.ListValue") {
      reflection->MutableMessage(message, f);
    }
  }
}

int EnvelopeHttpStatus(const Message& message) {
  const FieldDescriptor* code = message.GetDescriptor()->FindFieldByName("code");
  if (code == nullptr || code->cpp_type() != FieldDescriptor::CPPTYPE_INT32) return 200;
  int value = message.GetReflection()->GetInt32(message, code);
  return value >= 100 && value <= 599 ? value : 400;
}

}  // namespace

absl::Status BuildRequest(const Route& route, const api::PathBindings& bindings,
                          std::string_view query, std::string_view body,
                          std::string_view content_type, Message* request) {
  SUBMARINE_RETURN_IF_ERROR(ApplyBody(route, body, content_type, request));
  SUBMARINE_RETURN_IF_ERROR(ApplyQuery(route, query, request));
  return ApplyPath(route, bindings, request);
}

absl::StatusOr<HttpReply> RenderResponse(const Route& route, grpc::ByteBuffer* response) {
  const Message* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(
      route.method->output_type());
  std::unique_ptr<Message> message(prototype->New());
  grpc::Status parsed = grpc::SerializationTraits<Message>::Deserialize(response, message.get());
  if (!parsed.ok()) {
    return Internal(absl::StrCat("the backend's answer to ", route.grpc_method, " is not a valid ",
                                 route.method->output_type()->full_name()));
  }
  const Message* rendered = message.get();
  if (route.response_body_field != nullptr &&
      route.response_body_field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    rendered = &message->GetReflection()->GetMessage(*message, route.response_body_field);
  }
  HttpReply reply;
  if (route.raw_response) {
    const Descriptor* type = rendered->GetDescriptor();
    const google::protobuf::Reflection* reflection = rendered->GetReflection();
    reply.content_type = reflection->GetString(*rendered, type->FindFieldByName("content_type"));
    if (reply.content_type.empty()) reply.content_type = "application/octet-stream";
    reply.body = reflection->GetString(*rendered, type->FindFieldByName("data"));
    return reply;
  }
  google::protobuf::util::JsonPrintOptions options;
  if (route.face != REST_FACE_SUBMARINE_V1) {
    auto st = google::protobuf::util::MessageToJsonString(*rendered, &reply.body, options);
    if (!st.ok()) return Internal(absl::StrCat("cannot render JSON: ", st.message().as_string()));
    return reply;
  }
  FillEnvelopeNulls(message.get());
  options.always_print_primitive_fields = true;
  std::string printed;
  auto st = google::protobuf::util::MessageToJsonString(*message, &printed, options);
  if (!st.ok()) return Internal(absl::StrCat("cannot render JSON: ", st.message().as_string()));
  // Declaration order, so the envelope reads status, code, success, message, result, attributes.
  auto parsed_json = nlohmann::ordered_json::parse(printed, nullptr, false);
  if (parsed_json.is_discarded()) return Internal("cannot re-read rendered JSON");
  nlohmann::ordered_json ordered = nlohmann::ordered_json::object();
  const Descriptor* type = message->GetDescriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    auto it = parsed_json.find(type->field(i)->json_name());
    if (it != parsed_json.end()) ordered[it.key()] = std::move(it.value());
  }
  reply.status = EnvelopeHttpStatus(*message);
  reply.body = Dump(ordered);
  return reply;
}

HttpReply RenderError(RestFace face, const grpc::Status& status, int http_status) {
  int code = static_cast<int>(status.error_code());
  // Bounded and valid UTF-8 whatever the backend sent (its own edge should have done so).
  const std::string message = QuoteInput(status.error_message(), kMaxErrorMessageBytes);
  HttpReply reply;
  reply.status = http_status != 0 ? http_status : HttpStatusForCode(code);
  if (face == REST_FACE_SUBMARINE_V1) {
    nlohmann::ordered_json body = {{"status", HttpStatusName(reply.status)},
                                   {"code", reply.status},
                                   {"success", nullptr},
                                   {"message", message},
                                   {"result", nullptr},
                                   {"attributes", nlohmann::ordered_json::object()}};
    reply.body = Dump(body);
    return reply;
  }
  nlohmann::ordered_json details = nlohmann::ordered_json::array();
  google::rpc::Status rpc;
  if (DecodeStatusDetails(status, &rpc)) {
    for (const auto& any : rpc.details()) {
      std::string json;
      if (!google::protobuf::util::MessageToJsonString(any, &json).ok()) continue;
      auto parsed = nlohmann::ordered_json::parse(json, nullptr, false);
      if (!parsed.is_discarded()) details.push_back(std::move(parsed));
    }
  }
  if (details.empty()) {
    details.push_back({{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
                       {"reason", CodeName(code)},
                       {"domain", kGatewayDomain}});
  }
  nlohmann::ordered_json body = {{"error",
                                  {{"code", reply.status},
                                   {"message", message},
                                   {"status", CodeName(code)},
                                   {"details", std::move(details)}}}};
  reply.body = Dump(body);
  return reply;
}

HttpReply RenderError(RestFace face, const absl::Status& status, int http_status) {
  return RenderError(face, ToGrpcStatus(status, kGatewayDomain), http_status);
}

std::string HttpStatusName(int http_status) {
  switch (http_status) {
    case 200:
      return "OK";
    case 201:
      return "CREATED";
    case 202:
      return "ACCEPTED";
    case 204:
      return "NO_CONTENT";
    case 400:
      return "BAD_REQUEST";
    case 401:
      return "UNAUTHORIZED";
    case 403:
      return "FORBIDDEN";
    case 404:
      return "NOT_FOUND";
    case 405:
      return "METHOD_NOT_ALLOWED";
    case 406:
      return "NOT_ACCEPTABLE";
    case 409:
      return "CONFLICT";
    case 410:
      return "GONE";
    case 412:
      return "PRECONDITION_FAILED";
    case 413:
      return "REQUEST_ENTITY_TOO_LARGE";
    case 415:
      return "UNSUPPORTED_MEDIA_TYPE";
    case 429:
      return "TOO_MANY_REQUESTS";
    case 431:
      return "REQUEST_HEADER_FIELDS_TOO_LARGE";
    case 499:
      return "CLIENT_CLOSED_REQUEST";
    case 500:
      return "INTERNAL_SERVER_ERROR";
    case 501:
      return "NOT_IMPLEMENTED";
    case 502:
      return "BAD_GATEWAY";
    case 503:
      return "SERVICE_UNAVAILABLE";
    case 504:
      return "GATEWAY_TIMEOUT";
    default:
      return http_status < 400 ? "OK" : "BAD_REQUEST";
  }
}

}  // namespace submarine::gateway
