#include "services/permission/permission_errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::permission {

absl::Status WithMetadata(absl::Status status,
                          const std::vector<std::pair<std::string, std::string>>& extra) {
  google::rpc::ErrorInfo info;
  if (!GetErrorInfo(status, &info)) return status;
  for (const auto& [k, v] : extra) (*info.mutable_metadata())[k] = v;
  // The payload's type URL as MakeError wrote it.
  std::string url;
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord&) {
    std::string candidate(type_url.data(), type_url.size());
    if (candidate.find("google.rpc.ErrorInfo") != std::string::npos) url = candidate;
  });
  if (!url.empty()) status.SetPayload(url, absl::Cord(info.SerializeAsString()));
  return status;
}

absl::Status CallerMayNot(const rpc::CallInfo& call, const std::string& what,
                          const std::string& resource) {
  std::string who = call.subject.empty() ? "the caller" : call.subject;
  return MakeError(absl::StatusCode::kPermissionDenied, "PERMISSION_DENIED",
                   absl::StrCat(who, " may not ", what), {{"resource", resource}});
}

}  // namespace submarine::permission
