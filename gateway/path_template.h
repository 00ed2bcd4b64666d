#pragma once
// A parsed google.api.http path template and its matcher. Grammar (google/api/http.proto):
//
//   Template  = "/" Segments [ Verb ] ;
//   Segments  = Segment { "/" Segment } ;
//   Segment   = "*" | "**" | LITERAL | Variable ;
//   Variable  = "{" FieldPath [ "=" Segments ] "}" ;
//   FieldPath = IDENT { "." IDENT } ;
//   Verb      = ":" LITERAL ;
//
// `{var}` means `{var=*}`. `*` matches exactly one non-empty path segment, `**` zero or more.
// Immutable after Parse(); Match() is thread-safe.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::gateway {

// (field path, decoded value) pairs captured by a match, in template order.
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

  // Parses `text`; INVALID_ARGUMENT naming the problem if it does not follow the grammar
  // (including a variable nested in a variable or a field path bound twice).
  static absl::StatusOr<PathTemplate> Parse(std::string_view text);

  // Matches the raw (percent-encoded, query-free) request path. On success appends the variable
  // bindings to `bindings` and returns true. Literals compare after percent-decoding. A variable
  // spanning one `*` segment is fully decoded; a multi-segment variable keeps "%2F" encoded so
  // its '/' separators stay unambiguous (RFC 6570 reserved expansion).
  bool Match(std::string_view path, PathBindings* bindings) const;

  const std::string& text() const { return text_; }
  const std::vector<Segment>& segments() const { return segments_; }
  const std::vector<Variable>& variables() const { return variables_; }
  // The custom verb without ':' (empty if none).
  const std::string& verb() const { return verb_; }
  // Number of literal segments (plus one for a verb): more literals = more specific route.
  int Specificity() const;

 private:
  bool MatchFrom(size_t pi, const std::vector<std::string_view>& parts, size_t ri,
                 std::vector<size_t>* starts) const;

  std::string text_;
  std::vector<Segment> segments_;
  std::vector<Variable> variables_;
  std::string verb_;
};

// Decodes %XX escapes (and '+' as space when `plus_is_space`). Malformed escapes stay as they
// are. When `keep_slash` is set, "%2F"/"%2f" is left encoded.
std::string PercentDecode(std::string_view in, bool plus_is_space = false, bool keep_slash = false);

}  // namespace submarine::gateway
