#include "common/api/labels.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::api {

absl::Status ValidateLabels(const Labels& labels, const std::string& field) {
  if (labels.size() > 64) return InvalidField(field, "more than 64 labels");
  for (const auto& [key, value] : labels) {
    bool ok = !key.empty() && key.size() <= 63 && absl::ascii_islower(key[0]);
    for (char c : key)
      ok = ok && (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-');
    if (!ok) {
      return InvalidField(absl::StrCat(field, ".", key.substr(0, 63)),
                          "label keys match [a-z][a-z0-9_-]{0,62}");
    }
    bool vok = value.size() <= 63;
    for (char c : value) {
      vok = vok &&
            (absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '_' || c == '-' || c == '.');
    }
    if (!vok) {
      return InvalidField(absl::StrCat(field, ".", key),
                          "label values are at most 63 of [a-z0-9_.-]");
    }
  }
  return absl::OkStatus();
}

std::string LabelsJson(const Labels& labels) {
  // Keys and values are validated ([a-z0-9_.-], no quotes) before they get here, but escape
  // anyway so the JSON is always well formed.
  auto esc = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == '"' || c == '\\') o += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      o += c;
    }
    return o;
  };
  std::string json = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    absl::StrAppend(&json, first ? "" : ",", "\"", esc(k), "\":\"", esc(v), "\"");
    first = false;
  }
  return json + "}";
}

}  // namespace submarine::api
