#pragma once
// The gtest fixture the event-system suites share: a bus process, one in-process publisher and
// one subscribing service's database (events_harness.h), started by the test as it needs them.

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "common/status/status.h"
#include "tests/integration/events/events_harness.h"
#include "tests/support/process.h"

namespace submarine::events::testing {

#define ASSERT_OK(expr)                                                  \
  do {                                                                   \
    auto _st = (expr);                                                   \
    ASSERT_TRUE(_st.ok()) << #expr << ": " << ::submarine::Message(_st); \
  } while (0)

template <typename T>
T ValueOrDie(absl::StatusOr<T> v) {
  if (!v.ok()) {
    ADD_FAILURE() << Message(v.status());
    std::abort();
  }
  return std::move(v).value();
}

class EventsTest : public ::testing::Test {
 protected:
  void StartBus() {
    bus_ = ValueOrDie(BusProcess::Start(submarine::testing::MakeTempDir("events-bus")));
  }

  std::unique_ptr<OutboxRelay> StartRelay(const std::string& endpoint,
                                          uint32_t heartbeat_ms = 100) {
    auto relay = std::make_unique<OutboxRelay>(publisher_->RelayOptions(endpoint, heartbeat_ms));
    EXPECT_TRUE(relay->Start().ok());
    return relay;
  }

  std::unique_ptr<Subscriber> StartSubscriber(Subscriber::Options options) {
    auto sub = std::make_unique<Subscriber>(std::move(options));
    EXPECT_TRUE(sub->Start().ok());
    return sub;
  }

  bool CursorIs(uint64_t last_seq, uint64_t published_seq) {
    auto c = publisher_->Cursor();
    return c.ok() && c->first == last_seq && c->second == published_seq;
  }

  std::unique_ptr<BusProcess> bus_;
  std::unique_ptr<TestPublisher> publisher_;
  std::unique_ptr<TestConsumer> consumer_;
};

}  // namespace submarine::events::testing
