#include "common/db/statement.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace submarine::db {

void Prepare(pqxx::connection_base& conn, const StatementSet& set) {
  for (const Statement& s : set) conn.prepare(s.name, s.sql);
}

Timestamp Timestamp::FromProto(const google::protobuf::Timestamp& ts) {
  return {google::protobuf::util::TimeUtil::TimestampToMicroseconds(ts)};
}

Timestamp Timestamp::FromTimePoint(std::chrono::system_clock::time_point t) {
  return {std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count()};
}

google::protobuf::Timestamp Timestamp::ToProto() const {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(micros);
}

std::chrono::system_clock::time_point Timestamp::ToTimePoint() const {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(micros));
}

std::string FormatTimestamp(Timestamp t) {
  // %E4Y, not %Y: PostgreSQL reads a year of one or two digits as the nearest year to 2020
  // ("1-01-01" is 2001), so years before 1000 need their leading zeros. Years past 9999 keep
  // all their digits.
  return absl::FormatTime("%E4Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(t.micros),
                          absl::UTCTimeZone());
}

std::optional<Timestamp> ParseTimestamp(const std::string& text) {
  // PostgreSQL separates date and time with a space; the date has four or more year digits.
  std::string s = text;
  size_t date_end = s.find_first_of(" T");
  if (date_end == std::string::npos || date_end < 10) return std::nullopt;
  s[date_end] = 'T';
  // PostgreSQL writes a whole-hour offset as "+00"; absl's %Ez wants "+00:00". (Offsets with
  // minutes or seconds, "+05:30" or "+05:53:28" in a zone's LMT era, are read as they are.)
  size_t sign = s.find_last_of("+-");
  if (sign != std::string::npos && sign > date_end && s.size() - sign == 3) s += ":00";
  absl::Time t;
  std::string error;
  bool parsed = s.back() == 'Z'
                    ? absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", s, absl::UTCTimeZone(), &t, &error)
                    : absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez", s, &t, &error);
  if (!parsed) return std::nullopt;
  return Timestamp{absl::ToUnixMicros(t)};
}

}  // namespace submarine::db

namespace pqxx {

void string_traits<submarine::db::Timestamp>::from_string(const char str[],
                                                          submarine::db::Timestamp& out) {
  auto parsed = submarine::db::ParseTimestamp(str);
  if (!parsed) {
    throw conversion_error(std::string("not a timestamp: \"") + std::string(str).substr(0, 40) +
                           "\"");
  }
  out = *parsed;
}

}  // namespace pqxx
