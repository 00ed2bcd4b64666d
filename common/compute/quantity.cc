#include "common/compute/quantity.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status/status.h"

namespace submarine::compute {
namespace {

using u128 = unsigned __int128;

// At most 10^20 - 1 as the significant digits, times 1024^6, stays below 2^128: every value the
// parser keeps fits in an unsigned __int128 before it is scaled.
constexpr size_t kMaxSignificantDigits = 20;
constexpr size_t kMaxQuantityLength = 64;
constexpr int kMaxPowerOfTen = 38;  // 10^38 < 2^128 < 10^39
constexpr u128 kInt64Max = static_cast<u128>(std::numeric_limits<int64_t>::max());

// value = significand * 10^exponent * 1024^binary_power, exactly.
struct ExactQuantity {
  u128 significand = 0;
  int exponent = 0;
  int binary_power = 0;
};

// The value rounded up to an integer number of 10^-scale units, and whether that was exact.
struct ScaledQuantity {
  int64_t value = 0;
  bool exact = true;
};

absl::Status Malformed(const std::string& text, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("\"", QuoteInput(text), "\" is not a Kubernetes quantity: ", why));
}

absl::Status TooLarge(const std::string& text) {
  return absl::InvalidArgumentError(absl::StrCat("\"", QuoteInput(text), "\" is too large"));
}

u128 PowerOfTen(int n) {
  u128 p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

// The suffix's contribution: a power of 1024, or a power of ten; nullopt if it is not a suffix.
std::optional<std::pair<int, int>> SuffixPowers(const std::string& suffix) {
  static const std::vector<std::pair<std::string, std::pair<int, int>>> kSuffixes = {
      {"", {0, 0}},   {"Ki", {1, 0}}, {"Mi", {2, 0}}, {"Gi", {3, 0}},
      {"Ti", {4, 0}}, {"Pi", {5, 0}}, {"Ei", {6, 0}}, {"n", {0, -9}},
      {"u", {0, -6}}, {"m", {0, -3}}, {"k", {0, 3}},  {"M", {0, 6}},
      {"G", {0, 9}},  {"T", {0, 12}}, {"P", {0, 15}}, {"E", {0, 18}}};
  for (const auto& [name, powers] : kSuffixes) {
    if (name == suffix) return powers;
  }
  return std::nullopt;
}

absl::StatusOr<ExactQuantity> ReadQuantity(const std::string& text) {
  if (text.empty()) return Malformed(text, "it is empty");
  if (text.size() > kMaxQuantityLength) return Malformed(text, "it is too long");
  size_t i = 0;
  if (text[0] == '-') return Malformed(text, "it must not be negative");
  if (text[0] == '+') ++i;
  std::string digits;
  int fraction_digits = 0;
  bool seen_point = false;
  bool seen_digit = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      seen_digit = true;
      if (seen_point) ++fraction_digits;
      if (!digits.empty() || c != '0') digits += c;  // leading zeros carry nothing
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else {
      break;
    }
  }
  if (!seen_digit) return Malformed(text, "it has no digits");

  ExactQuantity q;
  q.exponent = -fraction_digits;
  const std::string suffix = text.substr(i);
  if (auto powers = SuffixPowers(suffix)) {
    q.binary_power = powers->first;
    q.exponent += powers->second;
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    size_t j = 1;
    bool negative = false;
    if (j < suffix.size() && (suffix[j] == '+' || suffix[j] == '-')) negative = suffix[j++] == '-';
    const std::string exponent = suffix.substr(j);
    if (exponent.empty() || exponent.size() > 4 ||
        !std::all_of(exponent.begin(), exponent.end(),
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); })) {
      return Malformed(text, "the exponent must be 1 to 4 digits");
    }
    int e = std::stoi(exponent);
    q.exponent += negative ? -e : e;
  } else {
    return Malformed(text, "unknown suffix (use n u m k M G T P E, Ki Mi Gi Ti Pi Ei or e<n>)");
  }

  // Trailing zeros of the significand move into the exponent, so "1000000000000000000000000" is
  // one significant digit.
  while (!digits.empty() && digits.back() == '0') {
    digits.pop_back();
    ++q.exponent;
  }
  if (digits.size() > kMaxSignificantDigits) {
    return Malformed(text, "more than 20 significant digits");
  }
  for (char c : digits) q.significand = q.significand * 10 + static_cast<unsigned>(c - '0');
  return q;
}

// ceil(value * 10^scale) for a quantity read from `text`.
absl::StatusOr<ScaledQuantity> Scale(const std::string& text, int scale) {
  SUBMARINE_ASSIGN_OR_RETURN(ExactQuantity q, ReadQuantity(text));
  if (q.significand == 0) return ScaledQuantity{};
  u128 n = q.significand;
  for (int k = 0; k < q.binary_power; ++k) n *= 1024;  // < 2^128, see kMaxSignificantDigits
  const int power = q.exponent + scale;
  ScaledQuantity out;
  if (power >= 0) {
    for (int k = 0; k < power; ++k) {
      if (n > kInt64Max) return TooLarge(text);
      n *= 10;  // n <= INT64_MAX before, so no wrap-around
    }
    if (n > kInt64Max) return TooLarge(text);
    out.value = static_cast<int64_t>(n);
    return out;
  }
  if (-power > kMaxPowerOfTen) {  // n < 2^128 < 10^-power: a sliver of one unit
    out.value = 1;
    out.exact = false;
    return out;
  }
  const u128 divisor = PowerOfTen(-power);
  u128 whole = n / divisor;
  if (n % divisor != 0) {
    ++whole;
    out.exact = false;
  }
  if (whole > kInt64Max) return TooLarge(text);
  out.value = static_cast<int64_t>(whole);
  return out;
}

// The exact form with the smallest number: "2Gi", "512M", "1536".
std::string FormatMemory(int64_t bytes) {
  static const char* const kBinary[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  static const char* const kDecimal[] = {"", "k", "M", "G", "T", "P", "E"};
  int binary = 0, decimal = 0;
  int64_t in_binary = bytes, in_decimal = bytes;
  while (binary < 6 && in_binary % 1024 == 0) {
    in_binary /= 1024;
    ++binary;
  }
  while (decimal < 6 && in_decimal % 1000 == 0) {
    in_decimal /= 1000;
    ++decimal;
  }
  if (in_decimal < in_binary) return absl::StrCat(in_decimal, kDecimal[decimal]);
  return absl::StrCat(in_binary, kBinary[binary]);
}

}  // namespace

absl::StatusOr<int64_t> ParseMilliQuantity(const std::string& text) {
  SUBMARINE_ASSIGN_OR_RETURN(ScaledQuantity q, Scale(text, 3));
  return q.value;
}

absl::StatusOr<int64_t> ParseQuantity(const std::string& text) {
  SUBMARINE_ASSIGN_OR_RETURN(ScaledQuantity q, Scale(text, 0));
  return q.value;
}

absl::StatusOr<Resources> ParseResources(const std::string& text, const std::string& field) {
  Resources out;
  bool seen_cpu = false, seen_memory = false, seen_gpu = false;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  for (absl::string_view raw : absl::StrSplit(text, ',')) {
    const std::string item(absl::StripAsciiWhitespace(raw));
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      return InvalidField(field, absl::StrCat("\"", QuoteInput(item),
                                              "\" is not key=quantity (e.g. cpu=1,memory=2Gi)"));
    }
    const std::string key(absl::StripAsciiWhitespace(item.substr(0, eq)));
    const std::string value(absl::StripAsciiWhitespace(item.substr(eq + 1)));
    int64_t* target = nullptr;
    bool* seen = nullptr;
    int scale = 0;
    bool whole = false;
    if (key == "cpu") {
      target = &out.cpu_millis;
      seen = &seen_cpu;
      scale = 3;
    } else if (key == "memory") {
      target = &out.memory_bytes;
      seen = &seen_memory;
    } else if (key == "nvidia.com/gpu" || key == "gpu") {
      target = &out.gpus;
      seen = &seen_gpu;
      whole = true;
    } else {
      return InvalidField(field, absl::StrCat("unknown resource \"", QuoteInput(key),
                                              "\" (use cpu, memory or nvidia.com/gpu)"));
    }
    if (*seen) return InvalidField(field, absl::StrCat(key, ": given twice"));
    absl::StatusOr<ScaledQuantity> scaled = Scale(value, scale);
    if (!scaled.ok()) return InvalidField(field, absl::StrCat(key, ": ", Message(scaled.status())));
    if (whole && !scaled->exact) {
      return InvalidField(field,
                          absl::StrCat(key, ": \"", QuoteInput(value), "\" is not a whole number"));
    }
    *target = scaled->value;
    *seen = true;
  }
  return out;
}

std::string FormatResources(const Resources& resources) {
  std::vector<std::string> items;
  if (resources.cpu_millis != 0) {
    items.push_back(resources.cpu_millis % 1000 == 0
                        ? absl::StrCat("cpu=", resources.cpu_millis / 1000)
                        : absl::StrCat("cpu=", resources.cpu_millis, "m"));
  }
  if (resources.memory_bytes != 0) {
    items.push_back(absl::StrCat("memory=", FormatMemory(resources.memory_bytes)));
  }
  if (resources.gpus != 0) items.push_back(absl::StrCat("nvidia.com/gpu=", resources.gpus));
  return absl::StrJoin(items, ",");
}

}  // namespace submarine::compute
