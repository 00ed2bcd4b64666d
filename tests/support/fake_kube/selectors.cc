#include "tests/support/fake_kube/selectors.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/fake_kube/api_errors.h"
#include "tests/support/fake_kube/names.h"
#include "tests/support/fake_kube/resource_catalog.h"

namespace submarine::testing::fake_kube {
namespace {

enum class Tok { kIdent, kBang, kEq, kDoubleEq, kNotEq, kOpen, kClose, kComma, kGt, kLt, kEnd };

struct Token {
  Tok kind;
  std::string text;
};

bool IsIdentChar(char c) {
  return !std::isspace(static_cast<unsigned char>(c)) && c != ',' && c != '(' && c != ')' &&
         c != '=' && c != '!' && c != '<' && c != '>';
}

std::vector<Token> Lex(const std::string& s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '!' && i + 1 < s.size() && s[i + 1] == '=') {
      out.push_back({Tok::kNotEq, "!="});
      i += 2;
    } else if (c == '!') {
      out.push_back({Tok::kBang, "!"});
      ++i;
    } else if (c == '=' && i + 1 < s.size() && s[i + 1] == '=') {
      out.push_back({Tok::kDoubleEq, "=="});
      i += 2;
    } else if (c == '=') {
      out.push_back({Tok::kEq, "="});
      ++i;
    } else if (c == '(') {
      out.push_back({Tok::kOpen, "("});
      ++i;
    } else if (c == ')') {
      out.push_back({Tok::kClose, ")"});
      ++i;
    } else if (c == ',') {
      out.push_back({Tok::kComma, ","});
      ++i;
    } else if (c == '>') {
      out.push_back({Tok::kGt, ">"});
      ++i;
    } else if (c == '<') {
      out.push_back({Tok::kLt, "<"});
      ++i;
    } else {
      size_t j = i;
      while (j < s.size() && IsIdentChar(s[j])) ++j;
      out.push_back({Tok::kIdent, s.substr(i, j - i)});
      i = j;
    }
  }
  out.push_back({Tok::kEnd, ""});
  return out;
}

absl::Status ParseError(const std::string& what) {
  return BadRequestError(absl::StrCat("unable to parse requirement: ", what));
}

absl::Status CheckKey(const std::string& key) {
  std::string problem = QualifiedNameProblem(key);
  if (problem.empty()) return absl::OkStatus();
  return ParseError(absl::StrCat("Invalid value: \"", key, "\": ", problem));
}

absl::Status CheckValue(const std::string& value) {
  std::string problem = LabelValueProblem(value);
  if (problem.empty()) return absl::OkStatus();
  return ParseError(absl::StrCat("Invalid value: \"", value, "\": ", problem));
}

}  // namespace

absl::StatusOr<LabelSelector> LabelSelector::Parse(const std::string& text) {
  LabelSelector selector;
  if (absl::StripAsciiWhitespace(text).empty()) return selector;
  std::vector<Token> toks = Lex(text);
  size_t i = 0;
  auto expected = [&](const std::string& what) {
    return ParseError(absl::StrCat("found '", toks[i].kind == Tok::kEnd ? "" : toks[i].text,
                                   "', expected: ", what));
  };
  while (true) {
    Requirement req;
    if (toks[i].kind == Tok::kBang) {
      ++i;
      if (toks[i].kind != Tok::kIdent) return expected("identifier after '!'");
      req.key = toks[i++].text;
      req.op = Op::kNotExists;
      if (auto s = CheckKey(req.key); !s.ok()) return s;
    } else if (toks[i].kind == Tok::kIdent) {
      req.key = toks[i++].text;
      if (auto s = CheckKey(req.key); !s.ok()) return s;
      Tok k = toks[i].kind;
      if (k == Tok::kComma || k == Tok::kEnd) {
        req.op = Op::kExists;
      } else if (k == Tok::kEq || k == Tok::kDoubleEq || k == Tok::kNotEq) {
        req.op = k == Tok::kNotEq ? Op::kNotEquals : Op::kEquals;
        ++i;
        std::string value;
        if (toks[i].kind == Tok::kIdent) value = toks[i++].text;
        if (auto s = CheckValue(value); !s.ok()) return s;
        req.values.push_back(value);
      } else if (k == Tok::kGt || k == Tok::kLt) {
        req.op = k == Tok::kGt ? Op::kGreater : Op::kLess;
        ++i;
        int64_t n;
        if (toks[i].kind != Tok::kIdent || !absl::SimpleAtoi(toks[i].text, &n)) {
          return ParseError(
              absl::StrCat("for 'gt', 'lt' operators, exactly one value is "
                           "required and it must be an integer"));
        }
        req.values.push_back(toks[i++].text);
      } else if (k == Tok::kIdent && (toks[i].text == "in" || toks[i].text == "notin")) {
        req.op = toks[i].text == "in" ? Op::kIn : Op::kNotIn;
        ++i;
        if (toks[i].kind != Tok::kOpen) return expected("'('");
        ++i;
        while (true) {
          std::string value;
          if (toks[i].kind == Tok::kIdent) value = toks[i++].text;
          if (auto s = CheckValue(value); !s.ok()) return s;
          req.values.push_back(value);
          if (toks[i].kind == Tok::kComma) {
            ++i;
            continue;
          }
          if (toks[i].kind == Tok::kClose) {
            ++i;
            break;
          }
          return expected("',' or ')'");
        }
      } else {
        return expected("in, notin, =, ==, !=, gt, lt");
      }
    } else {
      return expected("!, identifier");
    }
    selector.requirements_.push_back(std::move(req));
    if (toks[i].kind == Tok::kEnd) break;
    if (toks[i].kind != Tok::kComma) return expected("','");
    ++i;
  }
  return selector;
}

bool LabelSelector::Matches(const nlohmann::json& labels) const {
  for (const auto& r : requirements_) {
    const nlohmann::json* value = nullptr;
    if (labels.is_object()) {
      auto it = labels.find(r.key);
      if (it != labels.end() && it->is_string()) value = &*it;
    }
    auto has = [&](const std::string& v) {
      return value && value->get_ref<const std::string&>() == v;
    };
    switch (r.op) {
      case Op::kExists:
        if (!value) return false;
        break;
      case Op::kNotExists:
        if (value) return false;
        break;
      case Op::kEquals:
        if (!has(r.values[0])) return false;
        break;
      case Op::kNotEquals:
        if (has(r.values[0])) return false;
        break;
      case Op::kIn:
        if (!value || std::none_of(r.values.begin(), r.values.end(), has)) return false;
        break;
      case Op::kNotIn:
        if (value && std::any_of(r.values.begin(), r.values.end(), has)) return false;
        break;
      case Op::kGreater:
      case Op::kLess: {
        int64_t have, want;
        if (!value || !absl::SimpleAtoi(value->get_ref<const std::string&>(), &have) ||
            !absl::SimpleAtoi(r.values[0], &want)) {
          return false;
        }
        if (r.op == Op::kGreater ? !(have > want) : !(have < want)) return false;
        break;
      }
    }
  }
  return true;
}

namespace {

std::vector<std::string> SelectableFields(const ResourceType& type) {
  std::vector<std::string> fields = {"metadata.name", "metadata.namespace"};
  if (type.group.empty() && type.plural == "pods") {
    for (const char* f :
         {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
          "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"}) {
      fields.push_back(f);
    }
  } else if (type.group.empty() && type.plural == "events") {
    for (const char* f :
         {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
          "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
          "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"}) {
      fields.push_back(f);
    }
  } else if (type.group.empty() && type.plural == "secrets") {
    fields.push_back("type");
  } else if (type.group.empty() && type.plural == "namespaces") {
    fields.push_back("status.phase");
  } else if (type.group == "batch" && type.plural == "jobs") {
    fields.push_back("status.successful");
  }
  return fields;
}

}  // namespace

std::string FieldValue(const nlohmann::json& object, const std::string& field) {
  if (field == "status.successful") {
    const auto* status = object.contains("status") ? &object["status"] : nullptr;
    int64_t n = status && status->is_object() ? status->value("succeeded", 0) : 0;
    return std::to_string(n);
  }
  if (field == "source") {
    // source.component, else reportingComponent (as the events registry selects it).
    auto it = object.find("source");
    std::string component = it != object.end() && it->is_object() ? it->value("component", "") : "";
    if (component.empty() && object.contains("reportingComponent") &&
        object["reportingComponent"].is_string()) {
      component = object["reportingComponent"].get<std::string>();
    }
    return component;
  }
  const nlohmann::json* cur = &object;
  for (absl::string_view part : absl::StrSplit(field, '.')) {
    if (!cur->is_object()) return "";
    auto it = cur->find(std::string(part));
    if (it == cur->end()) return "";
    cur = &*it;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_boolean()) return cur->get<bool>() ? "true" : "false";
  if (cur->is_number()) return cur->dump();
  return "";
}

absl::StatusOr<FieldSelector> FieldSelector::Parse(const std::string& text,
                                                   const ResourceType& type) {
  FieldSelector selector;
  if (absl::StripAsciiWhitespace(text).empty()) return selector;
  auto fields = SelectableFields(type);
  for (absl::string_view raw : absl::StrSplit(text, ',')) {
    std::string term(absl::StripAsciiWhitespace(raw));
    if (term.empty()) continue;
    Term t;
    size_t pos;
    if ((pos = term.find("!=")) != std::string::npos) {
      t.field = term.substr(0, pos);
      t.equals = false;
      t.value = term.substr(pos + 2);
    } else if ((pos = term.find("==")) != std::string::npos) {
      t.field = term.substr(0, pos);
      t.equals = true;
      t.value = term.substr(pos + 2);
    } else if ((pos = term.find('=')) != std::string::npos) {
      t.field = term.substr(0, pos);
      t.equals = true;
      t.value = term.substr(pos + 1);
    } else {
      return BadRequestError(
          absl::StrCat("invalid selector: '", text, "'; can't understand '", term, "'"));
    }
    if (std::find(fields.begin(), fields.end(), t.field) == fields.end()) {
      return BadRequestError(absl::StrCat("field label not supported: ", t.field));
    }
    selector.terms_.push_back(std::move(t));
  }
  return selector;
}

bool FieldSelector::Matches(const nlohmann::json& object) const {
  for (const auto& t : terms_) {
    std::string have;
    if (t.field == "metadata.name" || t.field == "metadata.namespace") {
      have = StringField(Field(object, "metadata"), t.field.substr(9));
    } else {
      have = FieldValue(object, t.field);
    }
    if ((have == t.value) != t.equals) return false;
  }
  return true;
}

std::string FieldSelector::SingleName() const {
  for (const auto& t : terms_) {
    if (t.field == "metadata.name" && t.equals) return t.value;
  }
  return "";
}

}  // namespace submarine::testing::fake_kube
