#pragma once
// Answers of the Apache Submarine 0.8 compatible faces (/api/v1/...), in its JsonResponse
// envelope (submarine.common.v1.SubmarineV1Response; the gateway sets the HTTP status from
// `code`). Errors are ordinary statuses, rendered into the envelope by the gateway.

#include <string>

#include "common/api/json_value.h"
#include "submarine/common/v1/submarine_v1.pb.h"

namespace submarine::api {

// Success: status "OK", code 200, success true, message null, `result`.
inline void SubmarineV1Ok(submarine::common::v1::SubmarineV1Response* resp,
                          google::protobuf::Value result) {
  resp->set_status("OK");
  resp->set_code(200);
  resp->mutable_success()->set_bool_value(true);
  *resp->mutable_message() = json::Null();
  *resp->mutable_result() = std::move(result);
  resp->mutable_attributes();
}

// Apache Submarine's validation quirk: HTTP 200, code 200, success null, result null and an
// error `message` (e.g. POST /api/v1/experiment with an empty body).
inline void SubmarineV1OkWithError(submarine::common::v1::SubmarineV1Response* resp,
                                   const std::string& message) {
  resp->set_status("OK");
  resp->set_code(200);
  *resp->mutable_success() = json::Null();
  *resp->mutable_message() = json::Str(message);
  *resp->mutable_result() = json::Null();
  resp->mutable_attributes();
}

}  // namespace submarine::api
