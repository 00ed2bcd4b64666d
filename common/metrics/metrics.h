#pragma once
// Prometheus text-format metrics. Counters, gauges and histograms are registered once by name
// (with a fixed label set baked into the series) and updated lock-free on hot paths.
// MetricsServer serves GET /metrics over plain HTTP/1.0 from one thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::metrics {

// A monotonically increasing count. Thread-safe.
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down. Thread-safe.
class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Latency histogram in seconds with fixed buckets. Thread-safe.
class Histogram {
 public:
  Histogram();
  void Observe(double seconds);
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

// Process-wide registry. Series are identified by (name, labels), labels as `k="v",k2="v2"`.
// Returned pointers live as long as the process.
class Registry {
 public:
  static Registry& Global();
  Counter* GetCounter(const std::string& name, const std::string& help,
                      const std::string& labels = "");
  Gauge* GetGauge(const std::string& name, const std::string& help,
                  const std::string& labels = "");
  Histogram* GetHistogram(const std::string& name, const std::string& help,
                          const std::string& labels = "");
  // The whole registry in Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// Serves the global registry at GET /metrics on `listen` ("127.0.0.1:0" for any free port).
class MetricsServer {
 public:
  ~MetricsServer();
  // Binds and starts the serving thread; returns the bound "host:port".
  absl::StatusOr<std::string> Start(const std::string& listen);
  // Stops the thread and closes the socket. Idempotent.
  void Stop();

 private:
  void Loop();
  int fd_ = -1;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace submarine::metrics
