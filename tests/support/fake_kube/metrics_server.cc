#include "tests/support/fake_kube/metrics_server.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/fake_kube/api_errors.h"
#include "tests/support/fake_kube/names.h"

namespace submarine::testing::fake_kube {
namespace {

using nlohmann::json;

std::string ReadMetricsSource(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct GroupUsage {
  int64_t cpu_ticks = 0;
  int64_t rss_pages = 0;
};

// CPU ticks and resident pages of every process in each of `groups`, in one pass over /proc.
std::map<pid_t, GroupUsage> SampleProcessGroups(const std::set<pid_t>& groups) {
  std::map<pid_t, GroupUsage> out;
  if (groups.empty()) return out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    const std::string text = ReadMetricsSource(absl::StrCat("/proc/", pid, "/stat"));
    // Fields after the parenthesised command, counted from 1: state(3) ppid pgrp ... utime(14)
    // stime(15) cutime(16) cstime(17) ... rss(24).
    const size_t close = text.rfind(')');
    if (close == std::string::npos || close + 2 > text.size()) continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(absl::string_view(text).substr(close + 2), ' ', absl::SkipEmpty());
    if (f.size() < 22) continue;
    int64_t group = 0;
    if (!absl::SimpleAtoi(f[2], &group) || !groups.count(static_cast<pid_t>(group))) continue;
    int64_t utime = 0, stime = 0, cutime = 0, cstime = 0, rss = 0;
    GroupUsage& u = out[static_cast<pid_t>(group)];
    if (absl::SimpleAtoi(f[11], &utime) && absl::SimpleAtoi(f[12], &stime) &&
        absl::SimpleAtoi(f[13], &cutime) && absl::SimpleAtoi(f[14], &cstime)) {
      u.cpu_ticks += utime + stime + cutime + cstime;
    }
    if (absl::SimpleAtoi(f[21], &rss)) u.rss_pages += rss;
  }
  ::closedir(proc);
  return out;
}

// The host's non-idle CPU time (ns) and memory in use (bytes), as the node's figures.
std::pair<int64_t, int64_t> SampleHost() {
  static const int64_t ticks = ::sysconf(_SC_CLK_TCK);
  int64_t cpu_ns = 0, memory = 0;
  std::istringstream stat(ReadMetricsSource("/proc/stat"));
  std::string label;
  stat >> label;
  if (label == "cpu") {
    int64_t v[8] = {0};  // user nice system idle iowait irq softirq steal
    for (int64_t& x : v) stat >> x;
    const int64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    if (ticks > 0) cpu_ns = busy * (1000000000 / ticks);
  }
  int64_t total_kb = 0, available_kb = 0;
  std::istringstream meminfo(ReadMetricsSource("/proc/meminfo"));
  std::string key, unit;
  int64_t value = 0;
  while (meminfo >> key >> value) {
    std::getline(meminfo, unit);
    if (key == "MemTotal:") total_kb = value;
    if (key == "MemAvailable:") available_kb = value;
  }
  memory = std::max<int64_t>(0, total_kb - available_kb) * 1024;
  return {cpu_ns, memory};
}

json UsageJson(int64_t nanocores, int64_t bytes) {
  return {{"cpu", NanocoresQuantity(nanocores)}, {"memory", BytesQuantity(bytes)}};
}

int64_t Nanocores(int64_t cpu_nanos, absl::Duration window) {
  const double seconds = absl::ToDoubleSeconds(window);
  if (seconds <= 0 || cpu_nanos <= 0) return 0;
  return static_cast<int64_t>(static_cast<double>(cpu_nanos) / seconds);
}

absl::Status MetricsNotFound(const std::string& plural, const std::string& name) {
  return ApiError(404, "NotFound", absl::StrCat(plural, ".metrics.k8s.io \"", name, "\" not found"),
                  {{"name", name}, {"group", "metrics.k8s.io"}, {"kind", plural}});
}

json MetricsList(const char* kind, json items) {
  return {{"kind", kind},
          {"apiVersion", "metrics.k8s.io/v1beta1"},
          {"metadata", json::object()},
          {"items", std::move(items)}};
}

}  // namespace

std::string NanocoresQuantity(int64_t nanocores) {
  return nanocores <= 0 ? "0" : absl::StrCat(nanocores, "n");
}

std::string BytesQuantity(int64_t bytes) {
  if (bytes <= 0) return "0";
  const char* suffixes[] = {"", "Ki", "Mi", "Gi", "Ti"};
  int i = 0;
  while (i < 4 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++i;
  }
  return absl::StrCat(bytes, suffixes[i]);
}

MetricsServer::MetricsServer(const ObjectStore& store, const Kubelet* kubelet,
                             absl::Duration resolution)
    : store_(store), kubelet_(kubelet), resolution_(resolution) {}

MetricsServer::~MetricsServer() { Stop(); }

void MetricsServer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void MetricsServer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MetricsServer::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Scrape();
    lock.lock();
    wake_.wait_for(lock, absl::ToChronoMilliseconds(resolution_), [this] { return stopping_; });
  }
}

void MetricsServer::Scrape() {
  std::vector<Kubelet::RunningContainer> running;
  if (kubelet_ != nullptr) running = kubelet_->Running();
  std::set<pid_t> groups;
  for (const auto& c : running) groups.insert(c.process_group);
  const std::map<pid_t, GroupUsage> usage = SampleProcessGroups(groups);
  const auto [host_cpu, host_memory] = SampleHost();
  static const int64_t ticks = ::sysconf(_SC_CLK_TCK);
  static const int64_t page = ::sysconf(_SC_PAGESIZE);
  const absl::Time now = absl::Now();
  std::lock_guard lock(mu_);
  std::map<std::string, Reported> next;
  for (const auto& c : running) {
    auto it = usage.find(c.process_group);
    if (it == usage.end()) continue;  // gone between the two reads
    Point p{.cpu_nanos = ticks > 0 ? it->second.cpu_ticks * (1000000000 / ticks) : 0,
            .memory_bytes = it->second.rss_pages * page,
            .at = now};
    Reported r{.namespace_ = c.namespace_, .pod = c.pod, .container = c.container};
    auto before = by_uid_.find(c.uid);
    if (before != by_uid_.end()) r.previous = before->second.last;
    r.last = p;
    next.emplace(c.uid, std::move(r));
  }
  by_uid_ = std::move(next);
  Reported node{.pod = Kubelet::kNodeName};
  if (node_) node.previous = node_->last;
  node.last = {.cpu_nanos = host_cpu, .memory_bytes = host_memory, .at = now};
  node_ = std::move(node);
}

json MetricsServer::PodItem(const std::string& uid) const {
  const Reported& r = by_uid_.at(uid);
  const absl::Duration window = r.last.at - r.previous->at;
  json labels = json::object();
  if (const ResourceType* pods = store_.catalog().Find("", "v1", "pods")) {
    auto pod = store_.Get(*pods, r.namespace_, r.pod);
    if (pod.ok()) labels = Field(Field((*pod)->json, "metadata"), "labels");
  }
  if (!labels.is_object()) labels = json::object();
  json meta = {{"name", r.pod},
               {"namespace", r.namespace_},
               {"creationTimestamp", NowRfc3339()},
               {"labels", labels}};
  return {{"metadata", meta},
          {"timestamp", Rfc3339(absl::ToChronoTime(r.last.at))},
          {"window", absl::FormatDuration(window)},
          {"containers",
           json::array(
               {{{"name", r.container},
                 {"usage", UsageJson(Nanocores(r.last.cpu_nanos - r.previous->cpu_nanos, window),
                                     r.last.memory_bytes)}}})}};
}

json MetricsServer::NodeItem() const {
  const absl::Duration window = node_->last.at - node_->previous->at;
  return {{"metadata",
           {{"name", Kubelet::kNodeName},
            {"creationTimestamp", NowRfc3339()},
            {"labels", {{"kubernetes.io/hostname", Kubelet::kNodeName}}}}},
          {"timestamp", Rfc3339(absl::ToChronoTime(node_->last.at))},
          {"window", absl::FormatDuration(window)},
          {"usage", UsageJson(Nanocores(node_->last.cpu_nanos - node_->previous->cpu_nanos, window),
                              node_->last.memory_bytes)}};
}

json MetricsServer::ListPods(const std::string& namespace_, const LabelSelector& selector) const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, json>> found;
  for (const auto& [uid, r] : by_uid_) {
    if (!r.previous || (!namespace_.empty() && r.namespace_ != namespace_)) continue;
    json item = PodItem(uid);
    if (!selector.Matches(item["metadata"]["labels"])) continue;
    found.emplace_back(r.namespace_ + "/" + r.pod, std::move(item));
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  json items = json::array();
  for (auto& [key, item] : found) items.push_back(std::move(item));
  return MetricsList("PodMetricsList", std::move(items));
}

absl::StatusOr<json> MetricsServer::GetPod(const std::string& namespace_,
                                           const std::string& name) const {
  std::lock_guard lock(mu_);
  for (const auto& [uid, r] : by_uid_) {
    if (r.previous && r.namespace_ == namespace_ && r.pod == name) {
      json item = PodItem(uid);
      item["kind"] = "PodMetrics";
      item["apiVersion"] = "metrics.k8s.io/v1beta1";
      return item;
    }
  }
  return MetricsNotFound("podmetrics", name);
}

json MetricsServer::ListNodes(const LabelSelector& selector) const {
  std::lock_guard lock(mu_);
  json items = json::array();
  if (node_ && node_->previous) {
    json item = NodeItem();
    if (selector.Matches(item["metadata"]["labels"])) items.push_back(std::move(item));
  }
  return MetricsList("NodeMetricsList", std::move(items));
}

absl::StatusOr<json> MetricsServer::GetNode(const std::string& name) const {
  std::lock_guard lock(mu_);
  if (name != Kubelet::kNodeName || !node_ || !node_->previous) {
    return MetricsNotFound("nodemetrics", name);
  }
  json item = NodeItem();
  item["kind"] = "NodeMetrics";
  item["apiVersion"] = "metrics.k8s.io/v1beta1";
  return item;
}

}  // namespace submarine::testing::fake_kube
