#include "common/api/resource_name.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "common/util/text.h"

namespace submarine::api {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 unreserved: the bytes a path segment carries as they are.
bool IsUnreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Every byte outside the unreserved set as %XX (upper-case hex, as curl_easy_escape writes it).
std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    if (IsUnreserved(c)) {
      out.push_back(c);
      continue;
    }
    auto byte = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xF]);
  }
  return out;
}

// `path` cut at every '/' ("" is one empty segment).
std::vector<std::string_view> SplitSegments(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(path.substr(start));
      return parts;
    }
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

bool IsTemplateIdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Recursive-descent parser over the template text.
class TemplateParser {
 public:
  explicit TemplateParser(std::string_view text) : s_(text) {}

  absl::Status Parse(std::vector<PathTemplate::Segment>* segments,
                     std::vector<PathTemplate::Variable>* variables, std::string* verb) {
    segments_ = segments;
    variables_ = variables;
    if (s_.empty() || s_[0] != '/') return Error("must start with '/'");
    pos_ = 1;
    SUBMARINE_RETURN_IF_ERROR(ParseSegments(false));
    if (pos_ < s_.size() && s_[pos_] == ':') {
      *verb = std::string(s_.substr(pos_ + 1));
      if (verb->empty() || verb->find_first_of("/{}*:") != std::string::npos) {
        return Error("invalid custom verb");
      }
      pos_ = s_.size();
    }
    if (pos_ != s_.size()) {
      return Error(absl::StrCat("unexpected '", std::string(s_.substr(pos_, 1)), "'"));
    }
    std::set<std::string> seen;
    for (const auto& v : *variables) {
      if (!seen.insert(v.field_path).second) {
        return Error(absl::StrCat("field path '", v.field_path, "' bound twice"));
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(const std::string& problem) const {
    return InvalidField("path_template",
                        absl::StrCat("'", QuoteInput(std::string(s_), kMaxErrorMetadataBytes),
                                     "': ", problem, " at offset ", pos_));
  }

  absl::Status ParseSegments(bool in_variable) {
    for (;;) {
      SUBMARINE_RETURN_IF_ERROR(ParseSegment(in_variable));
      if (pos_ < s_.size() && s_[pos_] == '/') {
        ++pos_;
        continue;
      }
      return absl::OkStatus();
    }
  }

  absl::Status ParseSegment(bool in_variable) {
    using Kind = PathTemplate::Segment::Kind;
    if (s_.substr(pos_, 2) == "**") {
      segments_->push_back({Kind::kMulti, ""});
      pos_ += 2;
      return absl::OkStatus();
    }
    if (pos_ < s_.size() && s_[pos_] == '*') {
      segments_->push_back({Kind::kSingle, ""});
      ++pos_;
      return absl::OkStatus();
    }
    if (pos_ < s_.size() && s_[pos_] == '{') {
      if (in_variable) return Error("nested variable");
      ++pos_;
      size_t start = pos_;
      while (pos_ < s_.size() && (IsTemplateIdentChar(s_[pos_]) || s_[pos_] == '.')) ++pos_;
      std::string field(s_.substr(start, pos_ - start));
      if (field.empty() || field.front() == '.' || field.back() == '.' ||
          field.find("..") != std::string::npos) {
        return Error("invalid field path");
      }
      PathTemplate::Variable var;
      var.field_path = field;
      var.begin = segments_->size();
      if (pos_ < s_.size() && s_[pos_] == '=') {
        ++pos_;
        SUBMARINE_RETURN_IF_ERROR(ParseSegments(true));
      } else {
        segments_->push_back({Kind::kSingle, ""});
      }
      if (pos_ >= s_.size() || s_[pos_] != '}') return Error("expected '}'");
      ++pos_;
      var.end = segments_->size();
      variables_->push_back(std::move(var));
      return absl::OkStatus();
    }
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != '/' && s_[pos_] != ':' && s_[pos_] != '{' &&
           s_[pos_] != '}' && s_[pos_] != '*' && s_[pos_] != '=') {
      ++pos_;
    }
    if (pos_ == start) return Error("empty segment");
    segments_->push_back({Kind::kLiteral, PercentDecode(s_.substr(start, pos_ - start))});
    return absl::OkStatus();
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::vector<PathTemplate::Segment>* segments_ = nullptr;
  std::vector<PathTemplate::Variable>* variables_ = nullptr;
};

bool LiteralEquals(std::string_view raw, const std::string& literal) {
  if (raw.find('%') == std::string_view::npos) return raw == literal;
  return PercentDecode(raw) == literal;
}

}  // namespace

std::string PercentDecode(std::string_view in, bool plus_is_space, bool keep_slash) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%' && i + 2 < in.size()) {
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        char decoded = static_cast<char>(hi * 16 + lo);
        if (keep_slash && decoded == '/') {
          out.append(in.substr(i, 3));
        } else {
          out.push_back(decoded);
        }
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

absl::StatusOr<PathTemplate> PathTemplate::Parse(std::string_view text) {
  PathTemplate t;
  t.text_ = std::string(text);
  TemplateParser parser(text);
  SUBMARINE_RETURN_IF_ERROR(parser.Parse(&t.segments_, &t.variables_, &t.verb_));
  return t;
}

int PathTemplate::Specificity() const {
  int n = verb_.empty() ? 0 : 1;
  for (const auto& s : segments_) n += s.kind == Segment::Kind::kLiteral ? 1 : 0;
  return n;
}

bool PathTemplate::MatchFrom(size_t pi, size_t end, const std::vector<std::string_view>& parts,
                             size_t ri, bool encoded, std::vector<size_t>* starts) const {
  (*starts)[pi] = ri;
  if (pi == end) return ri == parts.size();
  const Segment& seg = segments_[pi];
  switch (seg.kind) {
    case Segment::Kind::kLiteral:
      return ri < parts.size() &&
             (encoded ? LiteralEquals(parts[ri], seg.literal) : parts[ri] == seg.literal) &&
             MatchFrom(pi + 1, end, parts, ri + 1, encoded, starts);
    case Segment::Kind::kSingle:
      return ri < parts.size() && !parts[ri].empty() &&
             MatchFrom(pi + 1, end, parts, ri + 1, encoded, starts);
    case Segment::Kind::kMulti:
      for (size_t k = parts.size() - ri + 1; k-- > 0;) {
        if (MatchFrom(pi + 1, end, parts, ri + k, encoded, starts)) return true;
      }
      return false;
  }
  return false;
}

bool PathTemplate::IsSingleSegment(const Variable& var) const {
  return var.end == var.begin + 1 && segments_[var.begin].kind == Segment::Kind::kSingle;
}

bool PathTemplate::Match(std::string_view path, PathBindings* bindings) const {
  if (path.empty() || path[0] != '/') return false;
  path.remove_prefix(1);
  if (!verb_.empty()) {
    size_t colon = path.rfind(':');
    size_t slash = path.rfind('/');
    if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) {
      return false;
    }
    if (path.substr(colon + 1) != verb_) return false;
    path = path.substr(0, colon);
  }
  std::vector<std::string_view> parts = SplitSegments(path);
  std::vector<size_t> starts(segments_.size() + 1, 0);
  if (!MatchFrom(0, segments_.size(), parts, 0, /*encoded=*/true, &starts)) return false;
  for (const auto& var : variables_) {
    size_t from = starts[var.begin];
    size_t to = starts[var.end];
    bool single = IsSingleSegment(var);
    std::string value;
    for (size_t i = from; i < to; ++i) {
      if (i > from) value.push_back('/');
      value += PercentDecode(parts[i], false, !single);
    }
    bindings->emplace_back(var.field_path, std::move(value));
  }
  return true;
}

std::string PathTemplate::PatternOf(const Variable& var) const {
  std::string out;
  for (size_t i = var.begin; i < var.end; ++i) {
    if (i > var.begin) out.push_back('/');
    switch (segments_[i].kind) {
      case Segment::Kind::kLiteral:
        out += segments_[i].literal;
        break;
      case Segment::Kind::kSingle:
        out += "*";
        break;
      case Segment::Kind::kMulti:
        out += "**";
        break;
    }
  }
  return out;
}

absl::StatusOr<std::string> PathTemplate::Expand(
    const std::function<std::string(const std::string& field_path)>& value_of) const {
  std::string path;
  std::vector<size_t> starts(segments_.size() + 1, 0);
  for (size_t i = 0; i < segments_.size();) {
    path.push_back('/');
    auto var = std::find_if(variables_.begin(), variables_.end(),
                            [i](const Variable& v) { return v.begin == i; });
    if (var == variables_.end()) {
      if (segments_[i].kind != Segment::Kind::kLiteral) {
        return InvalidField("path_template",
                            absl::StrCat("'", QuoteInput(text_, kMaxErrorMetadataBytes),
                                         "': a wildcard outside a variable has no value"));
      }
      path += PercentEncode(segments_[i].literal);
      ++i;
      continue;
    }
    const std::string value = value_of(var->field_path);
    // One `*` segment takes the whole value, '/' and all; a longer variable its '/'-segments.
    std::vector<std::string_view> parts =
        IsSingleSegment(*var) ? std::vector<std::string_view>{value} : SplitSegments(value);
    if (!MatchFrom(var->begin, var->end, parts, 0, /*encoded=*/false, &starts)) {
      return InvalidField(var->field_path, absl::StrCat("\"", QuoteInput(value),
                                                        "\" is not of the form ", PatternOf(*var)));
    }
    for (size_t k = 0; k < parts.size(); ++k) {
      if (k > 0) path.push_back('/');
      path += PercentEncode(parts[k]);
    }
    i = var->end;
  }
  if (!verb_.empty()) absl::StrAppend(&path, ":", verb_);
  return path;
}

const std::string& ResourceName::Get(std::string_view variable) const {
  static const std::string* const kNone = new std::string();
  for (const auto& [name, value] : bindings_) {
    if (name == variable) return value;
  }
  return *kNone;
}

absl::StatusOr<ResourcePattern> ResourcePattern::Parse(std::string_view pattern) {
  auto refuse = [&](const std::string& problem) {
    return InvalidField("resource_pattern",
                        absl::StrCat("\"", QuoteInput(std::string(pattern), kMaxErrorMetadataBytes),
                                     "\" ", problem));
  };
  if (pattern.empty() || pattern.front() == '/') {
    return refuse("must not be empty or start with '/'");
  }
  // Literals compare exactly, so an escape would never match what it decodes to.
  if (pattern.find('%') != std::string_view::npos) return refuse("must not contain '%'");
  auto parsed = PathTemplate::Parse("/" + std::string(pattern));
  if (!parsed.ok()) {
    return refuse(absl::StrCat("is not a path template: ", parsed.status().message()));
  }
  if (!parsed->verb().empty()) return refuse("must not have a custom verb");
  if (parsed->variables().empty()) return refuse("has no variable");
  for (const auto& var : parsed->variables()) {
    if (var.end != var.begin + 1 ||
        parsed->segments()[var.begin].kind != PathTemplate::Segment::Kind::kSingle) {
      return refuse(absl::StrCat("binds {", var.field_path, "} to more than one segment"));
    }
    if (var.field_path.find('.') != std::string::npos) {
      return refuse(absl::StrCat("names a field path {", var.field_path, "}, not a variable"));
    }
  }
  size_t in_variables = 0;
  for (const auto& seg : parsed->segments()) {
    if (seg.kind == PathTemplate::Segment::Kind::kMulti) return refuse("has a '**' segment");
    if (seg.kind == PathTemplate::Segment::Kind::kSingle) {
      ++in_variables;
      continue;
    }
    for (char c : seg.literal) {
      if (!IsUnreserved(c)) {
        return refuse("has a literal segment with characters outside [A-Za-z0-9._~-]");
      }
    }
  }
  // A bare '*' outside any variable would match a segment nobody can read back or format.
  if (in_variables != parsed->variables().size()) return refuse("has a '*' outside a variable");
  ResourcePattern p;
  p.text_ = std::string(pattern);
  p.template_ = std::move(*parsed);
  return p;
}

std::vector<std::string> ResourcePattern::variables() const {
  std::vector<std::string> out;
  out.reserve(template_.variables().size());
  for (const auto& var : template_.variables()) out.push_back(var.field_path);
  return out;
}

absl::Status ResourcePattern::Mismatch(std::string_view field, const std::string& problem,
                                       std::string_view name) const {
  // Never copy more of an over-long name than the quote can show.
  std::string shown(name.substr(0, 4 * kMaxErrorMetadataBytes));
  return InvalidField(std::string(field),
                      absl::StrCat(problem, problem.empty() ? "" : ", ", "expected \"", text_,
                                   "\", got \"", QuoteInput(shown), "\""));
}

absl::StatusOr<ResourceName> ResourcePattern::Match(std::string_view name,
                                                    std::string_view field) const {
  if (name.size() > kMaxResourceNameBytes) {
    return Mismatch(field, absl::StrCat("longer than ", kMaxResourceNameBytes, " bytes"), name);
  }
  if (!text::IsValidUtf8(name)) return Mismatch(field, "not valid UTF-8", name);
  const auto& segments = template_.segments();
  std::vector<std::string_view> parts;
  parts.reserve(segments.size());
  size_t start = 0;
  for (;;) {
    size_t slash = name.find('/', start);
    parts.push_back(name.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos || parts.size() > segments.size()) break;
    start = slash + 1;
  }
  if (parts.size() != segments.size()) return Mismatch(field, "", name);
  for (size_t i = 0; i < segments.size(); ++i) {
    bool fits = segments[i].kind == PathTemplate::Segment::Kind::kLiteral
                    ? parts[i] == segments[i].literal
                    : !parts[i].empty();
    if (!fits) return Mismatch(field, "", name);
  }
  ResourceName out;
  out.text_ = std::string(name);
  out.bindings_.reserve(template_.variables().size());
  for (const auto& var : template_.variables()) {
    out.bindings_.emplace_back(var.field_path, std::string(parts[var.begin]));
  }
  return out;
}

absl::StatusOr<std::string> ResourcePattern::Format(const PathBindings& values) const {
  const auto& vars = template_.variables();
  std::vector<const std::string*> value_of(template_.segments().size(), nullptr);
  for (const auto& [variable, value] : values) {
    auto it = std::find_if(vars.begin(), vars.end(), [&](const PathTemplate::Variable& v) {
      return v.field_path == variable;
    });
    if (it == vars.end()) {
      return InvalidField(variable, absl::StrCat("is not a variable of \"", text_, "\""));
    }
    if (value_of[it->begin] != nullptr) return InvalidField(variable, "is bound twice");
    if (value.empty() || value.find('/') != std::string::npos) {
      return InvalidField(variable, absl::StrCat("must be one non-empty path segment of \"", text_,
                                                 "\", got \"", QuoteInput(value), "\""));
    }
    value_of[it->begin] = &value;
  }
  std::string out;
  for (size_t i = 0; i < template_.segments().size(); ++i) {
    if (i > 0) out.push_back('/');
    const auto& seg = template_.segments()[i];
    if (seg.kind == PathTemplate::Segment::Kind::kLiteral) {
      out += seg.literal;
      continue;
    }
    if (value_of[i] == nullptr) {
      const auto& var = *std::find_if(
          vars.begin(), vars.end(), [&](const PathTemplate::Variable& v) { return v.begin == i; });
      return InvalidField(var.field_path, absl::StrCat("is missing: \"", text_, "\" needs it"));
    }
    out += *value_of[i];
  }
  return out;
}

}  // namespace submarine::api
