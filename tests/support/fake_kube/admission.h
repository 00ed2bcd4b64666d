#pragma once
// What kube-apiserver (and, for TrainJobs, Trainer's webhook) does to an object between the
// request and the store: defaulting, validation (422 Invalid with field causes), immutability of
// fields an update may not change. Runs under the store's lock; it reads other objects through
// `lookup`.

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace submarine::testing::fake_kube {

struct ResourceType;
class ResourceCatalog;

// The object of `plural` in `group` named `name` (in `namespace_` when namespaced), or nullptr.
using ObjectLookup =
    std::function<const nlohmann::json*(const std::string& group, const std::string& plural,
                                        const std::string& namespace_, const std::string& name)>;

// One field error, rendered "<field>: <detail>" in the Status message.
struct FieldError {
  std::string field;
  std::string reason;  // FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...
  std::string detail;  // "Required value", `Invalid value: "x": must be ...`
};
// 422 Invalid for `errors` (one: "<kind> "x" is invalid: f: d"; several: "... is invalid: [a, b]").
absl::Status InvalidErrors(const ResourceType& type, const std::string& name,
                           const std::vector<FieldError>& errors);

// Defaults and validates an object being created. `obj` already carries its final name,
// namespace, uid and creationTimestamp.
absl::Status AdmitCreate(const ResourceType& type, nlohmann::json& obj, const ObjectLookup& lookup);

// Validates an update of `old` into `obj` (a spec write when !status_write) made by a client;
// controllers inside the fake (the scheduler binding a pod, for one) skip the immutability rules.
absl::Status AdmitUpdate(const ResourceType& type, const nlohmann::json& old, nlohmann::json& obj,
                         bool status_write, bool by_controller);

// The name rule of `type` applied to `name`: empty when valid, else the FieldError detail.
std::string NameProblem(const ResourceType& type, const std::string& name);

}  // namespace submarine::testing::fake_kube
