#pragma once
// Short builders of google.protobuf.Value, for JSON bodies assembled by hand (the Apache
// Submarine-compatible envelopes).

#include <google/protobuf/repeated_ptr_field.h>
#include <google/protobuf/struct.pb.h>

#include <string>

namespace submarine::api::json {

inline google::protobuf::Value Null() {
  google::protobuf::Value v;
  v.set_null_value(google::protobuf::NULL_VALUE);
  return v;
}
inline google::protobuf::Value Str(const std::string& s) {
  google::protobuf::Value v;
  v.set_string_value(s);
  return v;
}
inline google::protobuf::Value Num(double d) {
  google::protobuf::Value v;
  v.set_number_value(d);
  return v;
}
inline google::protobuf::Value Bool(bool b) {
  google::protobuf::Value v;
  v.set_bool_value(b);
  return v;
}
// "" → null, anything else → the string.
inline google::protobuf::Value NullableStr(const std::string& s) {
  return s.empty() ? Null() : Str(s);
}
inline google::protobuf::Value StrList(
    const google::protobuf::RepeatedPtrField<std::string>& items) {
  google::protobuf::Value v;
  auto* list = v.mutable_list_value();
  for (const auto& i : items) *list->add_values() = Str(i);
  return v;
}

}  // namespace submarine::api::json
