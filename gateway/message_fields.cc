#include "gateway/message_fields.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsWrapper(const Descriptor* d) {
  const std::string& n = d->full_name();
  return n == "google.protobuf.StringValue" || n == "google.protobuf.BytesValue" ||
         n == "google.protobuf.BoolValue" || n == "google.protobuf.Int32Value" ||
         n == "google.protobuf.Int64Value" || n == "google.protobuf.UInt32Value" ||
         n == "google.protobuf.UInt64Value" || n == "google.protobuf.FloatValue" ||
         n == "google.protobuf.DoubleValue";
}

bool IsStringFormWkt(const Descriptor* d) {
  const std::string& n = d->full_name();
  return n == "google.protobuf.Timestamp" || n == "google.protobuf.Duration" ||
         n == "google.protobuf.FieldMask";
}

absl::Status BadValue(const std::string& expected) {
  return absl::InvalidArgumentError(absl::StrCat("expected ", expected));
}

absl::Status SetScalar(Message* m, const FieldDescriptor* f, std::string_view text) {
  const Reflection* r = m->GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string value(text);
      if (f->type() == FieldDescriptor::TYPE_BYTES) {
        std::string decoded;
        if (!absl::WebSafeBase64Unescape(AbslView(text), &decoded) &&
            !absl::Base64Unescape(AbslView(text), &decoded)) {
          return BadValue("base64 bytes");
        }
        value = std::move(decoded);
      }
      rep ? r->AddString(m, f, std::move(value)) : r->SetString(m, f, std::move(value));
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v;
      if (!absl::SimpleAtoi(AbslView(text), &v)) return BadValue("a 32-bit integer");
      rep ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(AbslView(text), &v)) return BadValue("a 64-bit integer");
      rep ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      uint32_t v;
      if (!absl::SimpleAtoi(AbslView(text), &v)) return BadValue("an unsigned 32-bit integer");
      rep ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_UINT64: {
      uint64_t v;
      if (!absl::SimpleAtoi(AbslView(text), &v)) return BadValue("an unsigned 64-bit integer");
      rep ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double v;
      if (!absl::SimpleAtod(AbslView(text), &v)) return BadValue("a number");
      rep ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      float v;
      if (!absl::SimpleAtof(AbslView(text), &v)) return BadValue("a number");
      rep ? r->AddFloat(m, f, v) : r->SetFloat(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (text == "true" || text == "1") {
        v = true;
      } else if (text == "false" || text == "0") {
        v = false;
      } else {
        return BadValue("true or false");
      }
      rep ? r->AddBool(m, f, v) : r->SetBool(m, f, v);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* value = f->enum_type()->FindValueByName(std::string(text));
      int number;
      if (value == nullptr && absl::SimpleAtoi(AbslView(text), &number)) {
        value = f->enum_type()->FindValueByNumber(number);
      }
      if (value == nullptr) return BadValue(absl::StrCat("a value of ", f->enum_type()->name()));
      rep ? r->AddEnum(m, f, value) : r->SetEnum(m, f, value);
      return absl::OkStatus();
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      break;
  }
  return absl::InternalError("not a scalar field");
}

}  // namespace

const FieldDescriptor* FindFieldByAnyName(const Descriptor* desc, std::string_view name) {
  std::string key(name);
  const FieldDescriptor* f = desc->FindFieldByName(key);
  if (f == nullptr) f = desc->FindFieldByCamelcaseName(key);
  if (f == nullptr) {
    for (int i = 0; i < desc->field_count(); ++i) {
      if (desc->field(i)->json_name() == key) return desc->field(i);
    }
  }
  return f;
}

absl::StatusOr<FieldPath> ResolveFieldPath(const Descriptor* desc, std::string_view path) {
  FieldPath out;
  size_t start = 0;
  for (;;) {
    size_t dot = path.find('.', start);
    std::string_view part = path.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (desc == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("'", std::string(path), "': '",
                                                     std::string(part),
                                                     "' follows a field that is not a message"));
    }
    const FieldDescriptor* f = FindFieldByAnyName(desc, part);
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", std::string(path), "': no field '", std::string(part), "' in ", desc->full_name()));
    }
    out.push_back(f);
    if (dot == std::string_view::npos) break;
    if (f->is_repeated() || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      return absl::InvalidArgumentError(absl::StrCat("'", std::string(path), "': '", f->name(),
                                                     "' is not a singular message field"));
    }
    desc = f->message_type();
    start = dot + 1;
  }
  return out;
}

bool IsTextSettable(const FieldDescriptor* field) {
  if (field->is_map()) return false;
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) return true;
  return IsWrapper(field->message_type()) || IsStringFormWkt(field->message_type());
}

Message* MutableLeafParent(Message* root, const FieldPath& path) {
  Message* m = root;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    m = m->GetReflection()->MutableMessage(m, path[i]);
  }
  return m;
}

absl::Status SetFieldFromText(Message* message, const FieldDescriptor* field,
                              std::string_view text) {
  if (field->is_map()) return absl::InvalidArgumentError("map fields cannot be set from text");
  // Protobuf requires UTF-8 of every string field (a backend would fail to parse the request),
  // and no other kind of field has a non-ASCII text form.
  if (!IsValidUtf8(std::string(text))) return BadValue("valid UTF-8 text");
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    return SetScalar(message, field, text);
  }
  const Reflection* r = message->GetReflection();
  Message* target =
      field->is_repeated() ? r->AddMessage(message, field) : r->MutableMessage(message, field);
  const Descriptor* type = field->message_type();
  if (IsWrapper(type)) {
    return SetScalar(target, type->FindFieldByNumber(1), text);
  }
  if (IsStringFormWkt(type)) {
    std::string json = nlohmann::json(std::string(text)).dump();
    auto st = google::protobuf::util::JsonStringToMessage(json, target);
    if (!st.ok()) return BadValue(absl::StrCat("a ", type->name(), " in its JSON string form"));
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("message field of type ", type->full_name(), " cannot be set from text"));
}

std::string JsonPathName(const FieldPath& path) {
  std::string out;
  for (const auto* f : path) {
    if (!out.empty()) out.push_back('.');
    out += f->json_name();
  }
  return out;
}

}  // namespace submarine::gateway
