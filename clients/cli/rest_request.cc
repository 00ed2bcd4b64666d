#include "clients/cli/rest_request.h"

#include <google/protobuf/util/json_util.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "clients/cli/http_client.h"
#include "common/api/resource_name.h"
#include "common/status/status.h"
#include "google/api/annotations.pb.h"

namespace submarine::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

using FieldPath = std::vector<const FieldDescriptor*>;

absl::Status BadRule(const google::protobuf::MethodDescriptor& rpc, const std::string& problem) {
  return absl::FailedPreconditionError(
      absl::StrCat("the REST mapping of ", rpc.full_name(), " cannot be used: ", problem));
}

absl::StatusOr<FieldPath> ResolveField(const Descriptor* type, const std::string& dotted) {
  FieldPath path;
  std::vector<std::string> names = absl::StrSplit(dotted, '.');
  for (const std::string& name : names) {
    const FieldDescriptor* field = type == nullptr ? nullptr : type->FindFieldByName(name);
    if (field == nullptr || field->is_repeated()) {
      return absl::InvalidArgumentError(absl::StrCat("no singular field \"", dotted, "\""));
    }
    path.push_back(field);
    type = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? field->message_type() : nullptr;
  }
  return path;
}

// The message holding the last field of `path` in `message` (default instances along unset
// messages).
const Message& ParentOf(const Message& message, const FieldPath& path) {
  const Message* current = &message;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    current = &current->GetReflection()->GetMessage(*current, path[i]);
  }
  return *current;
}

std::string StringAt(const Message& message, const FieldPath& path) {
  const Message& parent = ParentOf(message, path);
  return parent.GetReflection()->GetString(parent, path.back());
}

void ClearAt(Message* message, const FieldPath& path) {
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const Reflection* reflection = message->GetReflection();
    if (!reflection->HasField(*message, path[i])) return;
    message = reflection->MutableMessage(message, path[i]);
  }
  message->GetReflection()->ClearField(message, path.back());
}

absl::StatusOr<std::string> ToJson(const Message& message) {
  std::string json;
  auto st = google::protobuf::util::MessageToJsonString(message, &json);
  if (!st.ok()) return Internal(absl::StrCat("cannot render JSON: ", st.message().as_string()));
  return json;
}

bool IsStringFormWellKnown(const Descriptor* type) {
  const std::string& n = type->full_name();
  return n == "google.protobuf.Timestamp" || n == "google.protobuf.Duration" ||
         n == "google.protobuf.FieldMask" ||
         (type->file()->name() == "google/protobuf/wrappers.proto");
}

absl::StatusOr<std::string> ScalarText(const Message& message, const FieldDescriptor* field,
                                       int index) {
  const Reflection* r = message.GetReflection();
  bool repeated = field->is_repeated();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string value =
          repeated ? r->GetRepeatedString(message, field, index) : r->GetString(message, field);
      return field->type() == FieldDescriptor::TYPE_BYTES ? absl::Base64Escape(value) : value;
    }
    case FieldDescriptor::CPPTYPE_BOOL:
      return std::string(
          (repeated ? r->GetRepeatedBool(message, field, index) : r->GetBool(message, field))
              ? "true"
              : "false");
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(repeated ? r->GetRepeatedInt32(message, field, index)
                                   : r->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(repeated ? r->GetRepeatedInt64(message, field, index)
                                   : r->GetInt64(message, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(repeated ? r->GetRepeatedUInt32(message, field, index)
                                   : r->GetUInt32(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(repeated ? r->GetRepeatedUInt64(message, field, index)
                                   : r->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return absl::StrFormat("%.17g", repeated ? r->GetRepeatedDouble(message, field, index)
                                               : r->GetDouble(message, field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return absl::StrFormat("%.9g", repeated ? r->GetRepeatedFloat(message, field, index)
                                              : r->GetFloat(message, field));
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* value =
          repeated ? r->GetRepeatedEnum(message, field, index) : r->GetEnum(message, field);
      return value->name();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE: {
      const Message& sub =
          repeated ? r->GetRepeatedMessage(message, field, index) : r->GetMessage(message, field);
      auto json_text = ToJson(sub);
      if (!json_text.ok()) return json_text.status();
      auto json = nlohmann::json::parse(*json_text, nullptr, /*allow_exceptions=*/false);
      if (json.is_string()) return json.get<std::string>();
      return json.dump();
    }
  }
  return Internal(absl::StrCat("unsupported field type of ", field->full_name()));
}

// Appends the set fields of `message` (under `prefix`) that are not bound by the path or the
// body as query parameters.
absl::Status AppendQuery(const Message& message, const std::string& prefix,
                         const std::vector<FieldPath>& path_fields, size_t depth,
                         const FieldDescriptor* body_field,
                         std::vector<std::pair<std::string, std::string>>* params) {
  std::vector<const FieldDescriptor*> fields;
  message.GetReflection()->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    if (depth == 0 && field == body_field) continue;
    std::vector<FieldPath> below;
    bool bound = false;
    for (const FieldPath& p : path_fields) {
      if (p.size() <= depth || p[depth] != field) continue;
      if (p.size() == depth + 1) bound = true;
      below.push_back(p);
    }
    if (bound) continue;
    std::string name = prefix + field->json_name();
    bool message_type = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (field->is_map() ||
        (message_type && field->is_repeated() && !IsStringFormWellKnown(field->message_type()))) {
      return absl::InvalidArgumentError(absl::StrCat(name, " cannot be sent as a query parameter"));
    }
    if (message_type && !IsStringFormWellKnown(field->message_type())) {
      SUBMARINE_RETURN_IF_ERROR(AppendQuery(message.GetReflection()->GetMessage(message, field),
                                            name + ".", below, depth + 1, nullptr, params));
      continue;
    }
    int count = field->is_repeated() ? message.GetReflection()->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      SUBMARINE_ASSIGN_OR_RETURN(std::string text, ScalarText(message, field, i));
      params->emplace_back(name, std::move(text));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<RestBinding> RestBindingsOf(const google::protobuf::MethodDescriptor& rpc) {
  std::vector<RestBinding> bindings;
  if (!rpc.options().HasExtension(google::api::http)) return bindings;
  const google::api::HttpRule& rule = rpc.options().GetExtension(google::api::http);
  auto add = [&bindings](const google::api::HttpRule& r) {
    RestBinding b;
    switch (r.pattern_case()) {
      case google::api::HttpRule::kGet:
        b = {"GET", r.get(), r.body()};
        break;
      case google::api::HttpRule::kPost:
        b = {"POST", r.post(), r.body()};
        break;
      case google::api::HttpRule::kPatch:
        b = {"PATCH", r.patch(), r.body()};
        break;
      case google::api::HttpRule::kPut:
        b = {"PUT", r.put(), r.body()};
        break;
      case google::api::HttpRule::kDelete:
        b = {"DELETE", r.delete_(), r.body()};
        break;
      default:
        return;  // custom verbs: not used by any Submarine API
    }
    bindings.push_back(std::move(b));
  };
  add(rule);
  for (const auto& extra : rule.additional_bindings()) add(extra);
  return bindings;
}

absl::StatusOr<RestRequest> BuildRestRequest(const google::protobuf::MethodDescriptor& rpc,
                                             const Message& request) {
  std::vector<RestBinding> bindings = RestBindingsOf(rpc);
  if (bindings.empty()) return BadRule(rpc, "it has no google.api.http option");
  absl::Status mismatch;
  for (const RestBinding& binding : bindings) {
    auto path_template = api::PathTemplate::Parse(binding.path_template);
    if (!path_template.ok()) return BadRule(rpc, submarine::Message(path_template.status()));
    std::map<std::string, FieldPath> fields;  // by the template's field path
    for (const auto& variable : path_template->variables()) {
      auto field = ResolveField(rpc.input_type(), variable.field_path);
      if (!field.ok()) return BadRule(rpc, submarine::Message(field.status()));
      if (field->back()->type() != FieldDescriptor::TYPE_STRING) {
        return BadRule(rpc,
                       absl::StrCat("path field \"", variable.field_path, "\" is not a string"));
      }
      fields[variable.field_path] = *std::move(field);
    }
    auto path = path_template->Expand(
        [&](const std::string& field_path) { return StringAt(request, fields.at(field_path)); });
    if (!path.ok()) {
      mismatch = path.status();
      continue;
    }
    std::vector<FieldPath> path_fields;
    for (const auto& [name, field] : fields) path_fields.push_back(field);
    RestRequest rest{binding.method, *path, ""};
    const FieldDescriptor* body_field = nullptr;
    if (binding.body == "*") {
      std::unique_ptr<Message> copy(request.New());
      copy->CopyFrom(request);
      for (const FieldPath& p : path_fields) ClearAt(copy.get(), p);
      SUBMARINE_ASSIGN_OR_RETURN(rest.body, ToJson(*copy));
      return rest;
    }
    if (!binding.body.empty()) {
      body_field = rpc.input_type()->FindFieldByName(binding.body);
      if (body_field == nullptr || body_field->is_repeated() ||
          body_field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        return BadRule(
            rpc, absl::StrCat("its body \"", binding.body, "\" is not a singular message field"));
      }
      SUBMARINE_ASSIGN_OR_RETURN(rest.body,
                                 ToJson(request.GetReflection()->GetMessage(request, body_field)));
    }
    std::vector<std::pair<std::string, std::string>> params;
    SUBMARINE_RETURN_IF_ERROR(AppendQuery(request, "", path_fields, 0, body_field, &params));
    for (size_t i = 0; i < params.size(); ++i) {
      absl::StrAppend(&rest.path_and_query, i == 0 ? "?" : "&", UrlEncode(params[i].first), "=",
                      UrlEncode(params[i].second));
    }
    return rest;
  }
  return mismatch;
}

}  // namespace submarine::cli
