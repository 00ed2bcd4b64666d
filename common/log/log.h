#pragma once
// Logging for every process: spdlog, one named logger per subsystem, the current request id on
// every line ("-" outside a request), text or JSON lines (SUBMARINE_LOG_FORMAT=json wins over the
// config). Thread-safe: the request id is thread-local and set by the server interceptors.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

#include "submarine/config/v1/config.pb.h"

namespace submarine::log {

// Configures the default sink, level and pattern. Call once, early in main().
void Init(const submarine::config::v1::LogConfig& config, std::string_view process);

// The logger for a subsystem, created on first use with the process-wide sinks.
std::shared_ptr<spdlog::logger> Get(const std::string& subsystem);

// The request id bound to this thread, empty if none.
const std::string& CurrentRequestId();

// Binds a request id to the current thread for the lifetime of the object.
class ScopedRequestId {
 public:
  explicit ScopedRequestId(std::string request_id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  std::string previous_;
};

}  // namespace submarine::log
