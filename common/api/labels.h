#pragma once
// User labels on resources (environments, experiments, models, ...): one rule and one storage
// form for every service.

#include <google/protobuf/map.h>

#include <string>

#include "absl/status/status.h"

namespace submarine::api {

using Labels = google::protobuf::Map<std::string, std::string>;

// At most 64 labels; keys match [a-z][a-z0-9_-]{0,62}, values are at most 63 of [a-z0-9_.-].
// INVALID_ARGUMENT naming "<field>.<key>" otherwise.
absl::Status ValidateLabels(const Labels& labels, const std::string& field);

// The labels as a JSON object, for a JSONB column (filters use `labels ->> key`, `labels ? key`).
std::string LabelsJson(const Labels& labels);

}  // namespace submarine::api
