#include "tests/support/fake_kube/api_errors.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "tests/support/fake_kube/resource_catalog.h"

namespace submarine::testing::fake_kube {
namespace {

constexpr char kPayloadUrl[] = "type.googleapis.com/k8s.io.apimachinery.pkg.apis.meta.v1.Status";

absl::StatusCode CodeFor(int http_code, const std::string& reason) {
  switch (http_code) {
    case 400:
    case 415:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 405:
    case 406:
      return absl::StatusCode::kUnimplemented;
    case 409:
      return reason == "AlreadyExists" ? absl::StatusCode::kAlreadyExists
                                       : absl::StatusCode::kAborted;
    case 410:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 503:
      return absl::StatusCode::kUnavailable;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      return absl::StatusCode::kInternal;
  }
}

int HttpCodeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kOutOfRange:
      return 410;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::optional<nlohmann::json> Payload(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload) return std::nullopt;
  auto parsed = nlohmann::json::parse(std::string(*payload), nullptr, false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed;
}

nlohmann::json Details(const ResourceType& type, const std::string& name) {
  nlohmann::json details = {{"name", name}, {"kind", type.plural}};
  if (!type.group.empty()) details["group"] = type.group;
  return details;
}

}  // namespace

std::string ReasonForCode(int http_code) {
  switch (http_code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 406:
      return "NotAcceptable";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 413:
      return "RequestEntityTooLarge";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return http_code >= 500 ? "InternalError" : "BadRequest";
  }
}

absl::Status ApiError(int http_code, const std::string& reason, const std::string& message,
                      nlohmann::json details) {
  nlohmann::json object = {
      {"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
      {"status", "Failure"}, {"message", message}, {"reason", reason},
      {"code", http_code}};
  if (!details.is_null()) object["details"] = std::move(details);
  absl::Status status(CodeFor(http_code, reason), message);
  status.SetPayload(kPayloadUrl, absl::Cord(object.dump()));
  return status;
}

nlohmann::json StatusObject(const absl::Status& status) {
  if (auto payload = Payload(status)) return *payload;
  int code = HttpCodeFor(status.code());
  return {{"kind", "Status"},
          {"apiVersion", "v1"},
          {"metadata", nlohmann::json::object()},
          {"status", status.ok() ? "Success" : "Failure"},
          {"message", std::string(status.message())},
          {"reason", ReasonForCode(code)},
          {"code", code}};
}

int HttpCode(const absl::Status& status) {
  if (auto payload = Payload(status)) return payload->value("code", 500);
  return HttpCodeFor(status.code());
}

absl::Status NotFoundError(const ResourceType& type, const std::string& name) {
  return ApiError(404, "NotFound", absl::StrCat(type.GroupResource(), " \"", name, "\" not found"),
                  Details(type, name));
}

absl::Status AlreadyExistsError(const ResourceType& type, const std::string& name) {
  return ApiError(409, "AlreadyExists",
                  absl::StrCat(type.GroupResource(), " \"", name, "\" already exists"),
                  Details(type, name));
}

absl::Status ConflictError(const ResourceType& type, const std::string& name,
                           const std::string& why) {
  return ApiError(409, "Conflict",
                  absl::StrCat("Operation cannot be fulfilled on ", type.GroupResource(), " \"",
                               name, "\": ", why),
                  Details(type, name));
}

absl::Status InvalidError(const ResourceType& type, const std::string& name,
                          const std::string& field, const std::string& cause_reason,
                          const std::string& problem) {
  nlohmann::json details = {{"name", name}, {"kind", type.kind}};
  if (!type.group.empty()) details["group"] = type.group;
  details["causes"] =
      nlohmann::json::array({{{"reason", cause_reason}, {"message", problem}, {"field", field}}});
  return ApiError(
      422, "Invalid",
      absl::StrCat(type.GroupKind(), " \"", name, "\" is invalid: ", field, ": ", problem),
      std::move(details));
}

absl::Status BadRequestError(const std::string& message) {
  return ApiError(400, "BadRequest", message);
}

}  // namespace submarine::testing::fake_kube
