#pragma once
// Kubernetes resource quantities ("500m", "1.5", "2Gi", "512M", "1e9") and the resource strings
// users write for a role ("cpu=1,memory=2Gi,nvidia.com/gpu=1"), parsed exactly: a quantity is
// read as a decimal number and scaled with integer arithmetic, so "0.1" cpu is 100 millicores and
// "1.5Gi" is 1610612736 bytes, never a double rounded the wrong way.
//
// Grammar (Kubernetes' resource.Quantity): an optional '+', digits with an optional '.' and
// fraction (at least one digit), then at most one suffix — binary Ki Mi Gi Ti Pi Ei (powers of
// 1024), decimal n u m k M G T P E (powers of 1000) or an exponent e<int>/E<int>. No spaces, no
// sign '-'. A value that is not a whole number of the target unit is rounded up, as Kubernetes
// does ("0.0001" cpu is 1m; "0.5" byte is 1).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/compute/compute.h"

namespace submarine::compute {

// The quantity in thousandths of its unit (cpu: millicores), rounded up. INVALID_ARGUMENT for an
// empty, malformed or negative quantity, or one above INT64_MAX thousandths; the message quotes
// (a prefix of) `text`.
absl::StatusOr<int64_t> ParseMilliQuantity(const std::string& text);

// The quantity in whole units (memory: bytes), rounded up. Errors as ParseMilliQuantity.
absl::StatusOr<int64_t> ParseQuantity(const std::string& text);

// Reads "key=quantity,key=quantity" (spaces around keys and values are allowed; the empty string
// is no request). Keys: cpu (a quantity of cores), memory (bytes), nvidia.com/gpu or gpu (a whole
// number). INVALID_ARGUMENT naming `field` and the key for an unknown key, a key given twice (gpu
// and nvidia.com/gpu are the same key), a malformed item or a bad quantity.
absl::StatusOr<Resources> ParseResources(const std::string& text, const std::string& field);

// The canonical text of `resources`, which ParseResources reads back to the same value:
// "cpu=500m,memory=2Gi,nvidia.com/gpu=1" (cpu in cores when whole, memory with the exact suffix
// that gives the smallest number — 2Gi, 512M, 1536 — binary on a tie; unspecified fields left
// out; "" when nothing is requested).
std::string FormatResources(const Resources& resources);

}  // namespace submarine::compute
