#pragma once
// PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and, for built-in kinds,
// strategic merge patch (maps merge; lists of containers, env, volumes, ports, conditions,
// ownerReferences ... merge by their key; finalizers merge as a set; `$patch`, `$retainKeys`,
// `$deleteFromPrimitiveList/` and `$setElementOrder/` directives).

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"

namespace submarine::testing::fake_kube {

struct ResourceType;

enum class PatchType { kMerge, kJson, kStrategic };

// The patch type of a Content-Type; 415 UnsupportedMediaType for any other (strategic merge for
// a custom resource included, as kube-apiserver answers).
absl::StatusOr<PatchType> PatchTypeOf(const std::string& content_type, const ResourceType& type);

// `target` with `patch` (the request body) applied. 400 BadRequest for a body that is not JSON
// of the right shape, 422 Invalid when a JSON patch operation cannot be applied.
absl::StatusOr<nlohmann::json> ApplyPatch(const nlohmann::json& target, PatchType type,
                                          const std::string& patch);

}  // namespace submarine::testing::fake_kube
