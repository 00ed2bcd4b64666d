#include "services/permission/audit_manager.h"

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "common/api/list_request.h"
#include "common/status/status.h"
#include "services/permission/access_evaluator.h"
#include "services/permission/audit_store.h"
#include "services/permission/permission_errors.h"
#include "services/permission/permission_names.h"

namespace submarine::permission {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
constexpr size_t kMaxPrincipal = 256;
constexpr size_t kMaxResource = 1024;

absl::StatusOr<std::optional<int64_t>> TimeFilter(const v1::ListAuditEventsRequest& req,
                                                  bool start) {
  bool has = start ? req.has_start_time() : req.has_end_time();
  if (!has) return std::optional<int64_t>();
  const auto& ts = start ? req.start_time() : req.end_time();
  // The range of google.protobuf.Timestamp: 0001-01-01 to 9999-12-31, nanos in [0, 1e9).
  bool valid = ts.seconds() >= TimeUtil::kTimestampMinSeconds &&
               ts.seconds() <= TimeUtil::kTimestampMaxSeconds && ts.nanos() >= 0 &&
               ts.nanos() < 1000000000;
  if (!valid) {
    return InvalidField(start ? "start_time" : "end_time", "is not a valid timestamp");
  }
  return std::optional<int64_t>(TimeUtil::TimestampToMicroseconds(ts));
}

}  // namespace

absl::StatusOr<v1::ListAuditEventsResponse> AuditManager::List(
    const v1::ListAuditEventsRequest& req, const rpc::CallInfo& call) {
  AuditQuery q;
  SUBMARINE_RETURN_IF_ERROR(CheckText(req.principal(), "principal", kMaxPrincipal));
  SUBMARINE_RETURN_IF_ERROR(CheckText(req.resource(), "resource", kMaxResource));
  q.principal = req.principal();
  q.resource = req.resource();
  // "projects/p/" means the same as "projects/p".
  while (!q.resource.empty() && q.resource.back() == '/') q.resource.pop_back();
  SUBMARINE_ASSIGN_OR_RETURN(q.start_micros, TimeFilter(req, true));
  SUBMARINE_ASSIGN_OR_RETURN(q.end_micros, TimeFilter(req, false));
  if (q.start_micros && q.end_micros && *q.end_micros <= *q.start_micros) {
    return InvalidField("end_time", "must be after start_time");
  }
  SUBMARINE_ASSIGN_OR_RETURN(
      q.limit, api::EffectivePageSize(req.page_size(), kDefaultPageSize, kMaxPageSize));
  uint64_t hash = api::QueryHash({"audit", q.principal, q.resource,
                                  q.start_micros ? absl::StrCat(*q.start_micros) : "",
                                  q.end_micros ? absl::StrCat(*q.end_micros) : ""});
  SUBMARINE_ASSIGN_OR_RETURN(auto token, api::DecodePageToken(req.page_token(), hash));
  if (!req.page_token().empty()) {
    q.after = {TimeUtil::TimestampToMicroseconds(token.after_time()), token.after_id()};
  }
  const int page = q.limit;
  q.limit = page + 1;  // one more row tells whether another page exists

  std::vector<StoredAuditEvent> rows;
  SUBMARINE_RETURN_IF_ERROR(
      pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) -> absl::Status {
        SUBMARINE_ASSIGN_OR_RETURN(Caller caller, ResolveCaller(tx, call));
        if (!caller.admin) {
          return CallerMayNot(call, "read the audit log (admins only)", "auditEvents");
        }
        rows = AuditStore::List(tx, q);
        return absl::OkStatus();
      }));
  v1::ListAuditEventsResponse resp;
  resp.set_next_page_token(api::TakePage(
      rows, page, hash, [&](const auto& r) { *resp.add_events() = r.event; },
      [](const auto& r, submarine::common::v1::PageToken* next) {
        *next->mutable_after_time() = TimeUtil::MicrosecondsToTimestamp(r.occur_micros);
        next->set_after_id(r.id);
      }));
  return resp;
}

}  // namespace submarine::permission
