#include "tests/support/fake_kube/patch.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/support/fake_kube/api_errors.h"
#include "tests/support/fake_kube/resource_catalog.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

// Lists that strategic merge patch merges by a key (patchMergeKey in the Kubernetes API types).
std::string MergeKeyOf(const std::string& field, const json& sample) {
  static const std::map<std::string, std::string> kKeys = {
      {"containers", "name"},
      {"initContainers", "name"},
      {"ephemeralContainers", "name"},
      {"env", "name"},
      {"volumes", "name"},
      {"volumeMounts", "mountPath"},
      {"volumeDevices", "devicePath"},
      {"conditions", "type"},
      {"ownerReferences", "uid"},
      {"imagePullSecrets", "name"},
      {"hostAliases", "ip"},
      {"schedulingGates", "name"},
      {"resourceClaims", "name"},
      {"topologySpreadConstraints", "topologyKey"}};
  if (field == "ports") {
    return sample.is_object() && sample.contains("containerPort") ? "containerPort" : "port";
  }
  auto it = kKeys.find(field);
  return it == kKeys.end() ? "" : it->second;
}

// Primitive lists that strategic merge patch treats as sets.
bool IsMergedPrimitiveList(const std::string& field) { return field == "finalizers"; }

json StrategicMerge(const json& target, const json& patch);

json MergeList(const std::string& field, const json& target, const json& patch) {
  if (!patch.is_array()) return patch;
  if (std::any_of(patch.begin(), patch.end(), [](const json& e) {
        return e.is_object() && e.value("$patch", "") == "replace";
      })) {
    json out = json::array();
    for (const auto& e : patch) {
      if (!(e.is_object() && e.contains("$patch"))) out.push_back(e);
    }
    return out;
  }
  if (IsMergedPrimitiveList(field) && target.is_array()) {
    json out = target;
    for (const auto& e : patch) {
      if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
    }
    return out;
  }
  std::string key = MergeKeyOf(field, patch.empty() ? json() : patch.front());
  if (key.empty() || !target.is_array()) {
    json out = json::array();
    for (const auto& e : patch) {
      if (!(e.is_object() && e.value("$patch", "") == "delete")) out.push_back(e);
    }
    return out;
  }
  json out = target;
  for (const auto& e : patch) {
    if (!e.is_object() || !e.contains(key)) {
      out.push_back(e);
      continue;
    }
    auto match = std::find_if(out.begin(), out.end(), [&](const json& t) {
      return t.is_object() && t.contains(key) && t[key] == e[key];
    });
    bool remove = e.value("$patch", "") == "delete";
    if (match == out.end()) {
      if (!remove) out.push_back(StrategicMerge(json::object(), e));
    } else if (remove) {
      out.erase(match);
    } else {
      *match = StrategicMerge(*match, e);
    }
  }
  return out;
}

json StrategicMerge(const json& target, const json& patch) {
  if (!patch.is_object()) return patch;
  std::string directive = patch.value("$patch", "");
  if (directive == "delete") return nullptr;
  json out = target.is_object() && directive != "replace" ? target : json::object();
  if (patch.contains("$retainKeys") && patch["$retainKeys"].is_array()) {
    json kept = json::object();
    for (const auto& k : patch["$retainKeys"]) {
      if (k.is_string() && out.contains(k.get<std::string>())) {
        kept[k.get<std::string>()] = out[k.get<std::string>()];
      }
    }
    out = kept;
  }
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& k = it.key();
    if (k == "$patch" || k == "$retainKeys" || absl::StartsWith(k, "$setElementOrder/")) continue;
    if (absl::StartsWith(k, "$deleteFromPrimitiveList/")) {
      std::string field = k.substr(std::string("$deleteFromPrimitiveList/").size());
      if (out.contains(field) && out[field].is_array() && it->is_array()) {
        json kept = json::array();
        for (const auto& e : out[field]) {
          if (std::find(it->begin(), it->end(), e) == it->end()) kept.push_back(e);
        }
        out[field] = kept;
      }
      continue;
    }
    if (it->is_null()) {
      out.erase(k);
    } else if (it->is_object()) {
      json merged = StrategicMerge(out.contains(k) ? out[k] : json(), *it);
      if (merged.is_null()) {
        out.erase(k);
      } else {
        out[k] = merged;
      }
    } else if (it->is_array()) {
      out[k] = MergeList(k, out.contains(k) ? out[k] : json(), *it);
    } else {
      out[k] = *it;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<PatchType> PatchTypeOf(const std::string& content_type, const ResourceType& type) {
  std::string media = absl::AsciiStrToLower(content_type.substr(0, content_type.find(';')));
  media = std::string(absl::StripAsciiWhitespace(media));
  if (media == "application/merge-patch+json") return PatchType::kMerge;
  if (media == "application/json-patch+json") return PatchType::kJson;
  if (media == "application/strategic-merge-patch+json" && !type.custom) {
    return PatchType::kStrategic;
  }
  std::string accepted = "application/json-patch+json, application/merge-patch+json";
  if (!type.custom) absl::StrAppend(&accepted, ", application/strategic-merge-patch+json");
  return ApiError(415, "UnsupportedMediaType",
                  absl::StrCat("the body of the request was in an unknown format - accepted media "
                               "types include: ",
                               accepted));
}

absl::StatusOr<json> ApplyPatch(const json& target, PatchType type, const std::string& patch) {
  json body = json::parse(patch, nullptr, false);
  if (body.is_discarded()) {
    return BadRequestError(absl::StrCat("error decoding patch: invalid JSON"));
  }
  switch (type) {
    case PatchType::kMerge: {
      if (!body.is_object()) {
        return BadRequestError("error decoding patch: a merge patch must be a JSON object");
      }
      json out = target;
      out.merge_patch(body);
      return out;
    }
    case PatchType::kStrategic: {
      if (!body.is_object()) {
        return BadRequestError("error decoding patch: a strategic merge patch must be an object");
      }
      return StrategicMerge(target, body);
    }
    case PatchType::kJson: {
      if (!body.is_array()) {
        return BadRequestError("error decoding patch: a JSON patch must be an array");
      }
      try {
        return target.patch(body);
      } catch (const json::exception& e) {
        return ApiError(422, "Invalid",
                        absl::StrCat("the server rejected our request due to an error in our "
                                     "request: ",
                                     e.what()));
      }
    }
  }
  return BadRequestError("unknown patch type");
}

}  // namespace submarine::testing::fake_kube
