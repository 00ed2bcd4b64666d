#pragma once
// Label and field selectors, parsed and matched as kube-apiserver does.
//
// Label selectors: comma-separated requirements `key`, `!key`, `key=v`, `key==v`, `key!=v`,
// `key in (a,b)`, `key notin (a,b)`, `key>n`, `key<n`. `!=` and `notin` also match objects
// without the key. Field selectors: `field=v`, `field==v`, `field!=v`, on metadata.name,
// metadata.namespace and the few fields each kind supports (pods: status.phase, spec.nodeName
// ...); any other field is a 400 "field label not supported".

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::testing::fake_kube {

struct ResourceType;

class LabelSelector {
 public:
  // Parses `text` (empty = everything). BadRequest Status error naming the problem.
  static absl::StatusOr<LabelSelector> Parse(const std::string& text);
  // Whether an object with these labels (a JSON object, or null for none) is selected.
  bool Matches(const nlohmann::json& labels) const;
  bool empty() const { return requirements_.empty(); }

 private:
  enum class Op { kExists, kNotExists, kEquals, kNotEquals, kIn, kNotIn, kGreater, kLess };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };
  std::vector<Requirement> requirements_;
};

class FieldSelector {
 public:
  // Parses `text` for objects of `type` (empty = everything).
  static absl::StatusOr<FieldSelector> Parse(const std::string& text, const ResourceType& type);
  bool Matches(const nlohmann::json& object) const;
  bool empty() const { return terms_.empty(); }
  // The name asked for by `metadata.name=X`, empty when there is no such term.
  std::string SingleName() const;

 private:
  struct Term {
    std::string field;
    bool equals;
    std::string value;
  };
  std::vector<Term> terms_;
};

// The string value of a selectable field of `object` (an absent field is "").
std::string FieldValue(const nlohmann::json& object, const std::string& field);

}  // namespace submarine::testing::fake_kube
