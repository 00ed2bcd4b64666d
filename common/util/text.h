#pragma once
// UTF-8 and control-character handling shared by error messages (QuoteInput in
// common/status) and log lines (common/log): user input must never forge a log line or break a
// protobuf string field.

#include <cstddef>
#include <string>
#include <string_view>

namespace submarine::text {

// Length of the well-formed UTF-8 sequence that starts at text[i] (1 to 4), or 0 when the bytes
// there are not one (a stray continuation byte, an overlong form, a surrogate, a code point past
// U+10FFFF, or a sequence cut short). Requires i < text.size().
size_t Utf8SequenceLength(std::string_view text, size_t i);

// Whether `text` is well-formed UTF-8: what protobuf requires of every string field.
bool IsValidUtf8(std::string_view text);

// Appends `text` to `out` with every ASCII control character escaped (\n, \r, \t, else \xNN;
// also DEL) and every byte that is not part of well-formed UTF-8 replaced by U+FFFD. Printable
// text, multi-byte characters included, is copied unchanged. Stops before a piece would take
// `out` past `max_bytes` in total and returns false then; true when all of `text` was appended.
bool AppendEscaped(std::string_view text, std::string* out, size_t max_bytes = std::string::npos);

}  // namespace submarine::text
