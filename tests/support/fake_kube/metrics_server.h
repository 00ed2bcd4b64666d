#pragma once
// A stand-in for metrics-server, serving the resource metrics API (metrics.k8s.io/v1beta1,
// read-only) from the processes the fake kubelet runs. Like metrics-server it scrapes every
// `resolution` on a thread of its own and reports, per running container, the CPU *rate* between
// its last two scrapes (nanocores, "123456n", over `window`) and the memory resident at the last
// one ("1234Ki"). A container is reported once it was scraped twice; ended containers are not
// reported (nor is a pod without a running one).
//
// Where the numbers come from: the container's process group in /proc — utime+stime (+ the
// reaped children's cutime+cstime) of its members for CPU, the sum of their RSS for memory
// (metrics-server reports the cgroup's working set; without a cgroup per pod, RSS is the
// nearest). The node "fake-node" is reported from /proc/stat (non-idle CPU of the host) and
// /proc/meminfo (MemTotal - MemAvailable).
//
// Thread-safe. Stop() (or the destructor) joins the scraper.

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/fake_kube/kubelet.h"
#include "tests/support/fake_kube/object_store.h"
#include "tests/support/fake_kube/selectors.h"

namespace submarine::testing::fake_kube {

class MetricsServer {
 public:
  static constexpr char kGroup[] = "metrics.k8s.io";
  static constexpr char kVersion[] = "v1beta1";

  // `kubelet` may be null (no pods run: nothing is reported).
  MetricsServer(const ObjectStore& store, const Kubelet* kubelet, absl::Duration resolution);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  void Start();
  void Stop();

  // A PodMetricsList of the reported pods in `namespace_` ("" = every namespace) whose pod's
  // labels match `selector`.
  nlohmann::json ListPods(const std::string& namespace_, const LabelSelector& selector) const;
  // One PodMetrics; 404 NotFound (podmetrics.metrics.k8s.io "x" not found) when not reported.
  absl::StatusOr<nlohmann::json> GetPod(const std::string& namespace_,
                                        const std::string& name) const;
  // A NodeMetricsList of fake-node (once scraped twice), and one NodeMetrics.
  nlohmann::json ListNodes(const LabelSelector& selector) const;
  absl::StatusOr<nlohmann::json> GetNode(const std::string& name) const;

  // Scrapes once now (the scraper's work), for tests that want no wait.
  void Scrape();

 private:
  struct Point {  // one scrape
    int64_t cpu_nanos = 0;
    int64_t memory_bytes = 0;
    absl::Time at;
  };
  struct Reported {  // the last two scrapes of one container (or the node)
    std::string namespace_;
    std::string pod;
    std::string container;
    std::optional<Point> previous;
    Point last;
  };
  nlohmann::json PodItem(const std::string& uid) const;  // mu_ held
  nlohmann::json NodeItem() const;                       // mu_ held
  void Loop();

  const ObjectStore& store_;
  const Kubelet* const kubelet_;
  const absl::Duration resolution_;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                   // mu_
  std::map<std::string, Reported> by_uid_;  // running containers (mu_)
  std::optional<Reported> node_;            // mu_
};

// Quantities as metrics-server writes them: nanocores "123456n" ("0" for none), and bytes in
// the largest binary unit that divides them exactly ("512Ki", "3Mi", "1000").
std::string NanocoresQuantity(int64_t nanocores);
std::string BytesQuantity(int64_t bytes);

}  // namespace submarine::testing::fake_kube
