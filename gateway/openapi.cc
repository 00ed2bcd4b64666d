#include "gateway/openapi.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"

namespace submarine::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using Json = nlohmann::ordered_json;
using Kind = api::PathTemplate::Segment::Kind;

constexpr char kSchemaRef[] = "#/components/schemas/";
constexpr int kMaxQueryDepth = 3;

std::string Singular(const std::string& literal) {
  if (literal.size() > 3 && literal.ends_with("ies")) {
    return literal.substr(0, literal.size() - 3) + "y";
  }
  if (literal.size() > 1 && literal.ends_with("s")) return literal.substr(0, literal.size() - 1);
  return literal;
}

bool IsWellKnown(const Descriptor* d) { return d->file()->package() == "google.protobuf"; }

// The OpenAPI path of a template plus the names of its parameters with their descriptions.
struct OpenApiPathInfo {
  std::string path;
  std::vector<std::pair<std::string, std::string>> parameters;  // name, description
};

OpenApiPathInfo DescribePath(const api::PathTemplate& path) {
  OpenApiPathInfo info;
  const auto& segments = path.segments();
  std::vector<const api::PathTemplate::Variable*> owner(segments.size(), nullptr);
  for (const auto& var : path.variables()) {
    for (size_t i = var.begin; i < var.end; ++i) owner[i] = &var;
  }
  std::set<std::string> used;
  auto unique = [&used](std::string name) {
    std::string candidate = name;
    for (int n = 2; !used.insert(candidate).second; ++n) candidate = absl::StrCat(name, n);
    return candidate;
  };
  std::string previous_literal;
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& seg = segments[i];
    const api::PathTemplate::Variable* var = owner[i];
    info.path.push_back('/');
    if (seg.kind == Kind::kLiteral) {
      info.path += seg.literal;
      previous_literal = seg.literal;
      continue;
    }
    std::string name;
    std::string description;
    bool whole_variable = var != nullptr && var->end == var->begin + 1;
    if (whole_variable) {
      name = var->field_path;
      description = absl::StrCat("The request field `", var->field_path, "`",
                                 seg.kind == Kind::kMulti ? " (may contain '/')" : "", ".");
    } else if (var != nullptr) {
      std::string base = seg.kind == Kind::kMulti   ? absl::StrCat(var->field_path, "_path")
                         : previous_literal.empty() ? var->field_path
                                                    : Singular(previous_literal);
      name = base;
      std::string pattern;
      for (size_t j = var->begin; j < var->end; ++j) {
        if (j > var->begin) pattern.push_back('/');
        pattern += segments[j].kind == Kind::kLiteral  ? segments[j].literal
                   : segments[j].kind == Kind::kSingle ? "*"
                                                       : "**";
      }
      description =
          absl::StrCat("A segment of the request field `", var->field_path, "` (", pattern, ").");
    } else {
      name = absl::StrCat("segment", i);
      description = "Any path segment.";
    }
    name = unique(name);
    info.path += absl::StrCat("{", name, "}");
    info.parameters.emplace_back(name, description);
  }
  if (!path.verb().empty()) info.path += absl::StrCat(":", path.verb());
  return info;
}

class SchemaBuilder {
 public:
  // A schema for one field (or its element, when `element` is set for repeated fields).
  Json FieldSchema(const FieldDescriptor* f, bool element = false) {
    if (f->is_map()) {
      return Json{{"type", "object"},
                  {"additionalProperties", FieldSchema(f->message_type()->map_value())}};
    }
    if (f->is_repeated() && !element) {
      return Json{{"type", "array"}, {"items", FieldSchema(f, true)}};
    }
    switch (f->type()) {
      case FieldDescriptor::TYPE_INT32:
      case FieldDescriptor::TYPE_SINT32:
      case FieldDescriptor::TYPE_SFIXED32:
        return Json{{"type", "integer"}, {"format", "int32"}};
      case FieldDescriptor::TYPE_UINT32:
      case FieldDescriptor::TYPE_FIXED32:
        return Json{{"type", "integer"}, {"format", "int64"}, {"minimum", 0}};
      case FieldDescriptor::TYPE_INT64:
      case FieldDescriptor::TYPE_SINT64:
      case FieldDescriptor::TYPE_SFIXED64:
      case FieldDescriptor::TYPE_UINT64:
      case FieldDescriptor::TYPE_FIXED64:
        return Json{{"type", "string"}, {"format", "int64"}};
      case FieldDescriptor::TYPE_DOUBLE:
        return Json{{"type", "number"}, {"format", "double"}};
      case FieldDescriptor::TYPE_FLOAT:
        return Json{{"type", "number"}, {"format", "float"}};
      case FieldDescriptor::TYPE_BOOL:
        return Json{{"type", "boolean"}};
      case FieldDescriptor::TYPE_STRING:
        return Json{{"type", "string"}};
      case FieldDescriptor::TYPE_BYTES:
        return Json{{"type", "string"}, {"format", "byte"}};
      case FieldDescriptor::TYPE_ENUM: {
        Json values = Json::array();
        for (int i = 0; i < f->enum_type()->value_count(); ++i) {
          values.push_back(f->enum_type()->value(i)->name());
        }
        return Json{{"type", "string"}, {"enum", values}};
      }
      case FieldDescriptor::TYPE_MESSAGE:
      case FieldDescriptor::TYPE_GROUP:
        return MessageSchema(f->message_type());
    }
    return Json::object();
  }

  // A reference to (or, for well-known types, the inline schema of) a message.
  Json MessageSchema(const Descriptor* d) {
    if (IsWellKnown(d)) {
      const std::string& n = d->name();
      if (n == "Timestamp") return Json{{"type", "string"}, {"format", "date-time"}};
      if (n == "Duration") return Json{{"type", "string"}, {"example", "1.5s"}};
      if (n == "FieldMask") {
        return Json{{"type", "string"}, {"description", "Comma-separated field paths."}};
      }
      if (n == "Struct") return Json{{"type", "object"}, {"additionalProperties", true}};
      if (n == "Value") return Json{{"description", "Any JSON value, including null."}};
      if (n == "ListValue") return Json{{"type", "array"}, {"items", Json::object()}};
      if (n == "Empty") return Json{{"type", "object"}};
      if (n == "Any") {
        return Json{{"type", "object"},
                    {"properties", {{"@type", {{"type", "string"}}}}},
                    {"additionalProperties", true}};
      }
      if (d->field_count() == 1 && d->field(0)->name() == "value") {  // wrappers
        Json inner = FieldSchema(d->field(0));
        inner["nullable"] = true;
        return inner;
      }
    }
    Want(d);
    return Json{{"$ref", absl::StrCat(kSchemaRef, d->full_name())}};
  }

  void Want(const Descriptor* d) {
    if (done_.count(d->full_name()) == 0 && queued_.insert(d->full_name()).second) {
      todo_.push_back(d);
    }
  }

  // Emits every wanted message (and what they reference) into `schemas`.
  void Flush(Json* schemas) {
    while (!todo_.empty()) {
      const Descriptor* d = todo_.back();
      todo_.pop_back();
      done_.insert(d->full_name());
      Json properties = Json::object();
      for (int i = 0; i < d->field_count(); ++i) {
        properties[d->field(i)->json_name()] = FieldSchema(d->field(i));
      }
      (*schemas)[d->full_name()] = Json{{"type", "object"}, {"properties", properties}};
    }
  }

 private:
  std::vector<const Descriptor*> todo_;
  std::set<std::string> queued_;
  std::set<std::string> done_;
};

// Query parameters: every scalar leaf not bound by the path or the body, lowerCamel dotted names.
void CollectQueryParameters(const Route& route, const Descriptor* d, const FieldPath& prefix,
                            int depth, SchemaBuilder* schemas, Json* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    FieldPath path = prefix;
    path.push_back(f);
    if (prefix.empty() && (route.body == "*" || f == route.body_field)) continue;
    bool bound = false;
    for (const auto& p : route.path_fields) bound = bound || p == path;
    if (bound) continue;
    if (IsTextSettable(f)) {
      Json param = {{"name", JsonPathName(path)},
                    {"in", "query"},
                    {"required", false},
                    {"schema", schemas->FieldSchema(f)}};
      if (f->is_repeated()) param["explode"] = true;
      out->push_back(std::move(param));
    } else if (!f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
               !IsWellKnown(f->message_type()) && depth < kMaxQueryDepth) {
      CollectQueryParameters(route, f->message_type(), path, depth + 1, schemas, out);
    }
  }
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Json AipErrorSchema() {
  return Json{{"type", "object"},
              {"properties",
               {{"error",
                 {{"type", "object"},
                  {"properties",
                   {{"code", {{"type", "integer"}, {"description", "The HTTP status."}}},
                    {"message", {{"type", "string"}}},
                    {"status", {{"type", "string"}, {"description", "The gRPC code name."}}},
                    {"details",
                     {{"type", "array"},
                      {"items",
                       {{"type", "object"},
                        {"properties", {{"@type", {{"type", "string"}}}}},
                        {"additionalProperties", true}}}}}}}}}}}};
}

}  // namespace

std::string OpenApiPath(const api::PathTemplate& path) { return DescribePath(path).path; }

std::string GenerateOpenApi(const RouteTable& routes, const std::string& title,
                            const std::string& version) {
  SchemaBuilder schemas;
  Json paths = Json::object();
  std::map<std::string, int> operation_ids;
  for (const auto& route : routes.routes()) {
    OpenApiPathInfo info = DescribePath(route->path);
    Json parameters = Json::array();
    for (const auto& [name, description] : info.parameters) {
      parameters.push_back({{"name", name},
                            {"in", "path"},
                            {"required", true},
                            {"description", description},
                            {"schema", {{"type", "string"}}}});
    }
    CollectQueryParameters(*route, route->method->input_type(), {}, 0, &schemas, &parameters);
    std::string operation_id =
        absl::StrCat(route->method->service()->name(), "_", route->method->name());
    int n = ++operation_ids[operation_id];
    if (n > 1) operation_id = absl::StrCat(operation_id, "_", n);
    Json operation = {{"operationId", operation_id},
                      {"tags", Json::array({route->method->service()->full_name()})},
                      {"summary", route->method->full_name()},
                      {"parameters", parameters}};
    // Raw bodies (google.api.HttpBody): any media type, any bytes.
    const Json binary = {{"type", "string"}, {"format", "binary"}};
    if (route->raw_request) {
      operation["requestBody"] = {{"required", false},
                                  {"content", {{"*/*", {{"schema", binary}}}}}};
    } else if (!route->body.empty()) {
      Json schema = route->body_field != nullptr
                        ? schemas.FieldSchema(route->body_field)
                        : schemas.MessageSchema(route->method->input_type());
      operation["requestBody"] = {
          {"required", route->face != submarine::common::v1::REST_FACE_SUBMARINE_V1},
          {"content",
           {{"application/json", {{"schema", schema}}},
            {"application/yaml", {{"schema", schema}}}}}};
    }
    Json response_schema = route->response_body_field != nullptr
                               ? schemas.FieldSchema(route->response_body_field)
                               : schemas.MessageSchema(route->method->output_type());
    Json error_schema = route->face == submarine::common::v1::REST_FACE_SUBMARINE_V1
                            ? response_schema
                            : Json{{"$ref", absl::StrCat(kSchemaRef, "gateway.Error")}};
    // A server stream is one message per line (NDJSON) or per event (SSE), each of the schema.
    Json ok_content = route->raw_response ? Json{{"*/*", {{"schema", binary}}}}
                      : route->method->server_streaming()
                          ? Json{{"application/x-ndjson", {{"schema", response_schema}}},
                                 {"text/event-stream", {{"schema", response_schema}}}}
                          : Json{{"application/json", {{"schema", response_schema}}}};
    operation["responses"] = {
        {"200",
         {{"description", route->method->server_streaming() ? "OK: a stream of messages" : "OK"},
          {"content", ok_content}}},
        {"default",
         {{"description", "Error"},
          {"content", {{"application/json", {{"schema", error_schema}}}}}}}};
    // Exempt operations override the document-wide bearer requirement with "no security".
    if (route->auth_exempt) operation["security"] = Json::array();
    std::string method = Lower(route->http_method);
    paths[info.path][method] = std::move(operation);
  }
  Json components = Json::object();
  components["gateway.Error"] = AipErrorSchema();
  schemas.Flush(&components);
  Json security_schemes = {
      {"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}}};
  Json doc = {{"openapi", "3.0.3"},
              {"info", {{"title", title}, {"version", version}}},
              {"security", Json::array({{{"bearerAuth", Json::array()}}})},
              {"paths", paths},
              {"components", {{"schemas", components}, {"securitySchemes", security_schemes}}}};
  return doc.dump(2, ' ', false, Json::error_handler_t::replace);
}

}  // namespace submarine::gateway
