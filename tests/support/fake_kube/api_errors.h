#pragma once
// Kubernetes API errors as absl::Status values. Inside the fake every failure is an absl::Status
// that carries the `Status` object a real API server would answer (kind Status, status Failure,
// message, reason, details, code) as a payload, so the HTTP edge renders it unchanged and the
// direct-access methods of FakeKubeApiServer return it with a matching absl code.

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"

namespace submarine::testing::fake_kube {

struct ResourceType;

// An error answered with HTTP `http_code`, Status `reason` and `message`; `details` (an object
// with name, group, kind, causes, retryAfterSeconds ...) is omitted when null.
absl::Status ApiError(int http_code, const std::string& reason, const std::string& message,
                      nlohmann::json details = nullptr);

// The Status object of `status` (any absl status: one without a payload is rendered from its
// code and message) and the HTTP code it is answered with.
nlohmann::json StatusObject(const absl::Status& status);
int HttpCode(const absl::Status& status);

// The reason Kubernetes gives a bare HTTP code ("InternalError" for 500, "TooManyRequests" for
// 429, ...), used when a fault is injected by code.
std::string ReasonForCode(int http_code);

// Errors about one object of `type`, worded as kube-apiserver words them:
//   404 NotFound       `jobs.batch "x" not found`
//   409 AlreadyExists  `jobs.batch "x" already exists`
//   409 Conflict       `Operation cannot be fulfilled on jobs.batch "x": <why>`
//   422 Invalid        `Job.batch "x" is invalid: <field>: <problem>`
absl::Status NotFoundError(const ResourceType& type, const std::string& name);
absl::Status AlreadyExistsError(const ResourceType& type, const std::string& name);
absl::Status ConflictError(const ResourceType& type, const std::string& name,
                           const std::string& why);
// One field error: `cause_reason` is FieldValueInvalid, FieldValueRequired, FieldValueForbidden,
// FieldValueNotSupported ...; `problem` is the text after "<field>: " (e.g. `Required value`).
absl::Status InvalidError(const ResourceType& type, const std::string& name,
                          const std::string& field, const std::string& cause_reason,
                          const std::string& problem);
absl::Status BadRequestError(const std::string& message);

}  // namespace submarine::testing::fake_kube
