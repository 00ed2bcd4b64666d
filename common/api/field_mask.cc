#include "common/api/field_mask.h"

#include <google/protobuf/util/field_mask_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/api/names.h"
#include "common/status/status.h"

namespace submarine::api {
namespace {

std::string SnakeCase(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c >= 'A' && c <= 'Z') {
      out += '_';
      out += static_cast<char>(c - 'A' + 'a');
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> UpdatePaths(const google::protobuf::FieldMask& mask,
                                                     const std::set<std::string>& updatable,
                                                     std::vector<std::string> implicit) {
  if (mask.paths().empty()) return implicit;
  std::vector<std::string> out;
  for (const auto& path : mask.paths()) {
    if (path == "*") {
      for (const auto& p : updatable) {
        if (p.find('.') == std::string::npos) out.push_back(p);
      }
      continue;
    }
    std::string snake = SnakeCase(path);
    if (!updatable.count(snake)) {
      return InvalidField("update_mask",
                          absl::StrCat("field ", Quoted(path), " cannot be updated (updatable: ",
                                       absl::StrJoin(updatable, ", "), ")"));
    }
    out.push_back(snake);
  }
  return out;
}

void ApplyPaths(const std::vector<std::string>& paths, const google::protobuf::Message& from,
                google::protobuf::Message* to) {
  google::protobuf::FieldMask mask;
  for (const auto& p : paths) mask.add_paths(p);
  google::protobuf::util::FieldMaskUtil::MergeOptions options;
  options.set_replace_message_fields(true);
  options.set_replace_repeated_fields(true);
  google::protobuf::util::FieldMaskUtil::MergeMessageTo(from, mask, options, to);
}

}  // namespace submarine::api
