#pragma once
// Resource names and the google.api.http path templates they appear in: one parser and matcher
// shared by the gateway (which routes REST requests by template) and every service (which parses
// and builds the names its requests carry).
//
// PathTemplate follows the google.api.http grammar (google/api/http.proto):
//
//   Template  = "/" Segments [ Verb ] ;
//   Segments  = Segment { "/" Segment } ;
//   Segment   = "*" | "**" | LITERAL | Variable ;
//   Variable  = "{" FieldPath [ "=" Segments ] "}" ;
//   FieldPath = IDENT { "." IDENT } ;
//   Verb      = ":" LITERAL ;
//
// `{var}` means `{var=*}`. `*` matches exactly one non-empty path segment, `**` zero or more.
//
// ResourcePattern is the AIP-122 subset a resource name follows, written without the leading
// '/': literal collection segments and single-segment variables,
// "projects/{project}/environments/{environment}". It parses a name into its variables and
// builds a name from them; Format(Match(name)) == name.
//
// Every class here is immutable after Parse(); all methods are thread-safe.

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::api {

// (field path or variable, value) pairs captured by a match, in template order.
using PathBindings = std::vector<std::pair<std::string, std::string>>;

class PathTemplate {
 public:
  struct Segment {
    enum class Kind { kLiteral, kSingle, kMulti };  // LITERAL, "*", "**"
    Kind kind = Kind::kLiteral;
    std::string literal;  // for kLiteral
  };
  struct Variable {
    std::string field_path;  // e.g. "environment.name"
    size_t begin = 0;        // first segment of the variable
    size_t end = 0;          // one past its last segment
  };

  // Parses `text`; INVALID_ARGUMENT (field "path_template") naming the problem if it does not
  // follow the grammar (including a variable nested in a variable or a field path bound twice).
  static absl::StatusOr<PathTemplate> Parse(std::string_view text);

  // Matches the raw (percent-encoded, query-free) request path. On success appends the variable
  // bindings to `bindings` and returns true. Literals compare after percent-decoding. A variable
  // spanning one `*` segment is fully decoded; a multi-segment variable keeps "%2F" encoded so
  // its '/' separators stay unambiguous (RFC 6570 reserved expansion).
  bool Match(std::string_view path, PathBindings* bindings) const;

  // The inverse of Match: the path with every variable filled in from `value_of(field_path)`
  // (a value as the request field holds it, not percent-encoded) and the verb appended.
  // Literals and values are percent-encoded (every byte outside RFC 3986's unreserved set). A
  // variable spanning one `*` segment is encoded whole, '/' included, and must not be empty; a
  // longer variable keeps its '/' separators, so its value's segments must fit the variable's
  // pattern (`*` one non-empty segment, `**` any number, a literal itself):
  // {name=projects/*/environments/*} takes "projects/p/environments/e" but not "projects/p".
  // INVALID_ARGUMENT naming the variable's field path otherwise, quoting at most a short prefix
  // of the value:
  //   name: "projects/p" is not of the form projects/*/environments/*
  // (and naming "path_template" for a template with a wildcard outside any variable, which
  // nothing fills).
  absl::StatusOr<std::string> Expand(
      const std::function<std::string(const std::string& field_path)>& value_of) const;

  const std::string& text() const { return text_; }
  const std::vector<Segment>& segments() const { return segments_; }
  const std::vector<Variable>& variables() const { return variables_; }
  // The custom verb without ':' (empty if none).
  const std::string& verb() const { return verb_; }
  // Number of literal segments (plus one for a verb): more literals = more specific route.
  int Specificity() const;

 private:
  // Whether parts[ri..] match segments_[pi, end) exactly; literals compare percent-decoded when
  // `encoded` (a request path), as they are otherwise (a value). Records in (*starts)[i] the
  // part segment i matched from (and in (*starts)[end] where the match ended).
  bool MatchFrom(size_t pi, size_t end, const std::vector<std::string_view>& parts, size_t ri,
                 bool encoded, std::vector<size_t>* starts) const;
  // Whether `var` spans one `*` segment (its value is one segment, '/' and all).
  bool IsSingleSegment(const Variable& var) const;
  // `var`'s segments as written in a template: "*", "projects/*/environments/*".
  std::string PatternOf(const Variable& var) const;

  std::string text_;
  std::vector<Segment> segments_;
  std::vector<Variable> variables_;
  std::string verb_;
};

// Decodes %XX escapes (and '+' as space when `plus_is_space`). Malformed escapes stay as they
// are. When `keep_slash` is set, "%2F"/"%2f" is left encoded.
std::string PercentDecode(std::string_view in, bool plus_is_space = false, bool keep_slash = false);

// A resource name matched against its pattern: the name and each variable's value.
class ResourceName {
 public:
  // The whole name, as matched.
  const std::string& text() const { return text_; }
  // The value of `variable`; the empty string if the pattern has no such variable (a matched
  // variable is never empty).
  const std::string& Get(std::string_view variable) const;
  // Every (variable, value) pair in pattern order.
  const PathBindings& bindings() const { return bindings_; }

 private:
  friend class ResourcePattern;
  std::string text_;
  PathBindings bindings_;
};

// Names longer than this are refused by ResourcePattern::Match before any other check.
inline constexpr size_t kMaxResourceNameBytes = 1024;

class ResourcePattern {
 public:
  // Parses `pattern`: segments separated by '/', each a literal (no '%', '*', '{', '}', '=' or
  // ':') or a variable "{snake_case}"; no leading or trailing '/', at least one variable, no
  // variable twice. INVALID_ARGUMENT (field "resource_pattern") naming the problem otherwise.
  // Patterns are constants of the code, so a failure here is a programming error.
  static absl::StatusOr<ResourcePattern> Parse(std::string_view pattern);

  // Matches `name` (as written in a request, not percent-encoded): every literal must equal its
  // segment exactly and every variable takes one non-empty segment. Values are not otherwise
  // checked: a service validates them as ids (common/api/names.h). On a mismatch, INVALID_ARGUMENT
  // naming `field` (InvalidField) whose message shows the expected shape and at most a short
  // quoted prefix of `name` (QuoteInput), e.g.
  //   name: expected "projects/{project}/environments/{environment}", got "projects/p/models/m"
  // with "not valid UTF-8" or "longer than 1024 bytes" first when that is why; such a name is
  // never matched, whatever its segments.
  absl::StatusOr<ResourceName> Match(std::string_view name, std::string_view field) const;

  // Builds a name from one value per variable, in any order. INVALID_ARGUMENT naming the variable
  // if one is missing, unknown, bound twice, empty or contains '/' (which would make the name
  // match another shape); the message quotes at most a short prefix of a bad value.
  absl::StatusOr<std::string> Format(const PathBindings& values) const;

  // The pattern as given to Parse().
  const std::string& text() const { return text_; }
  // The variable names in pattern order.
  std::vector<std::string> variables() const;

 private:
  absl::Status Mismatch(std::string_view field, const std::string& problem,
                        std::string_view name) const;

  std::string text_;
  PathTemplate template_;  // "/" + text_: only kLiteral and single-segment variables
};

}  // namespace submarine::api
