// Links the test service's descriptor into submarine-gateway-streaming-test: the gateway finds
// services in the generated pool, which only holds the files whose objects are linked in.
#include "tests/integration/gateway/streaming_test.pb.h"

namespace submarine::gatewaytest::v1 {

[[maybe_unused]] const google::protobuf::Descriptor* const kStreamingTestLinked =
    CountRequest::descriptor();

}  // namespace submarine::gatewaytest::v1
