#pragma once
// Small pieces every part of the fake shares: Kubernetes name and label validation (returning
// the apimachinery wording of the problem, empty when valid), RFC 3339 times, random name
// suffixes and uids, and null-safe JSON field access.

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace submarine::testing::fake_kube {

std::string Dns1123SubdomainProblem(const std::string& name);  // pods, jobs, configmaps ...
std::string Dns1123LabelProblem(const std::string& name);      // namespaces
std::string Dns1035LabelProblem(const std::string& name);      // services, trainjobs
std::string QualifiedNameProblem(const std::string& key);      // label and annotation keys
std::string LabelValueProblem(const std::string& value);

using TimePoint = std::chrono::system_clock::time_point;
// "2026-08-21T10:00:00Z" (seconds, UTC), as metav1.Time renders.
std::string Rfc3339(TimePoint t);
std::string NowRfc3339();
std::optional<TimePoint> ParseRfc3339(const std::string& text);

// `n` characters of the alphabet Kubernetes uses for generateName ("bcdfghjklmnpqrstvwxz2456789").
std::string RandomSuffix(size_t n);
std::string NewUid();

// obj[key] when obj is an object holding key, else a shared null (never inserts).
const nlohmann::json& Field(const nlohmann::json& obj, const std::string& key);
std::string StringField(const nlohmann::json& obj, const std::string& key);
int64_t IntField(const nlohmann::json& obj, const std::string& key, int64_t fallback);
// True when obj[key] is the boolean true.
bool BoolField(const nlohmann::json& obj, const std::string& key);
// The controller ownerReference of `object` (the one with controller: true), or null.
const nlohmann::json* ControllerRef(const nlohmann::json& object);

}  // namespace submarine::testing::fake_kube
