#pragma once
// What every compute::Backend must do, written against Backend& only (compute.h is the
// contract). A backend's test binary compiles backend_conformance.cc and instantiates the suite
// with its target:
//
//   INSTANTIATE_TEST_SUITE_P(Local, BackendConformanceTest,
//                            ::testing::Values(LocalConformanceTarget()), ConformanceTargetName);
//
// and, when it runs service workloads, ServiceConformance the same way.
//
// The commands are POSIX (sh, printf, sleep, true), so any image with a shell runs them. Every
// wait polls Get with a deadline; nothing sleeps to synchronise.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/compute/compute.h"

namespace submarine::compute::testing {

struct ConformanceTarget {
  std::string name;
  // A fresh backend for one test; `scratch_dir` is a private directory the test removes after.
  std::function<absl::StatusOr<std::unique_ptr<Backend>>(const std::string& scratch_dir)> make;
  std::string image;  // set on every role; backends without images ignore it
  // How long a trivial workload may take from Submit to its final phase.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
};

std::string ConformanceTargetName(const ::testing::TestParamInfo<ConformanceTarget>& info);
// How gtest prints a target in failure messages: its name.
void PrintTo(const ConformanceTarget& target, std::ostream* os);

// A backend together with the fake cluster it talks to (a fake API server, a fake
// ResourceManager), for ConformanceTarget::make: calls go to `backend`, which is destroyed
// before the fake so that it stops talking to it first.
class BackendOnFake : public Backend {
 public:
  BackendOnFake(std::shared_ptr<void> fake, std::unique_ptr<Backend> backend)
      : fake_(std::move(fake)), backend_(std::move(backend)) {}
  ~BackendOnFake() override { backend_.reset(); }
  std::string Kind() const override { return backend_->Kind(); }
  absl::Status Submit(const WorkloadSpec& spec) override { return backend_->Submit(spec); }
  absl::StatusOr<WorkloadStatus> Get(const std::string& id) override { return backend_->Get(id); }
  absl::StatusOr<std::vector<WorkloadStatus>> List() override { return backend_->List(); }
  void OnChange(std::function<void()> notify) override { backend_->OnChange(std::move(notify)); }
  absl::Status Stop(const std::string& id, std::chrono::milliseconds grace) override {
    return backend_->Stop(id, grace);
  }
  absl::Status Delete(const std::string& id, bool keep_logs) override {
    return backend_->Delete(id, keep_logs);
  }
  absl::StatusOr<LogChunk> ReadLog(const std::string& id, const TaskRef& task, int64_t offset,
                                   int64_t max_bytes) override {
    return backend_->ReadLog(id, task, offset, max_bytes);
  }
  absl::Status Scale(const std::string& id, const std::string& role, int replicas,
                     std::chrono::milliseconds grace) override {
    return backend_->Scale(id, role, replicas, grace);
  }
  bool CanUpdateSecrets() const override { return backend_->CanUpdateSecrets(); }
  bool UpdatesSecretsOf(const WorkloadSpec& spec) const override {
    return backend_->UpdatesSecretsOf(spec);
  }
  absl::Status UpdateSecrets(const std::string& id,
                             const std::map<std::string, std::string>& values) override {
    return backend_->UpdateSecrets(id, values);
  }

 private:
  std::shared_ptr<void> fake_;
  std::unique_ptr<Backend> backend_;
};

inline const TaskRef kWorker0{"worker", 0};

// The spec golden-file tests render: exp-0123456789abcdef0123-1, PyTorch, EPOCHS=3, an owner
// label, a master (python3 train.py --lr 0.01; 500m cpu, 2Gi, 1 GPU, no image) and two workers
// (a shell string; ROLE_ONLY=x; 1 cpu; registry.example/worker:2; 3 restarts).
WorkloadSpec GoldenPytorchSpec();
// Expects `got` to equal tests/integration/compute/golden/<file>; with SUBMARINE_UPDATE_GOLDEN
// set, writes it there instead (review the diff).
void ExpectGolden(const std::string& got, const std::string& file);

// A status (or error) in one line, for failure messages.
std::string Describe(const absl::StatusOr<WorkloadStatus>& s);
bool Contains(const std::string& haystack, const std::string& needle);

// Helpers shared by the suite and by backend-specific tests.
class BackendTestBase {
 protected:
  // A batch workload with one role "worker" of `replicas` replicas running `command`.
  WorkloadSpec Spec(const std::string& id, std::vector<std::string> command,
                    int replicas = 1) const;
  // A workload id unique to this run, starting with `stem`.
  static std::string NewId(const std::string& stem);
  // Submits and remembers the id, so that TearDownBackend deletes it.
  absl::Status Submit(const WorkloadSpec& spec);
  // Polls Get until `done` holds or `timeout` passes; returns the last status (or error) seen.
  absl::StatusOr<WorkloadStatus> WaitFor(const std::string& id,
                                         const std::function<bool(const WorkloadStatus&)>& done,
                                         std::chrono::milliseconds timeout);
  absl::StatusOr<WorkloadStatus> WaitForFinal(const std::string& id,
                                              std::chrono::milliseconds timeout);
  // Submits `spec`, expects it to succeed within `timeout` and returns each task's log in task
  // order (nothing when it did not succeed).
  std::vector<std::string> RunToSuccess(const WorkloadSpec& spec,
                                        std::chrono::milliseconds timeout);
  // The whole log of a task, read in small chunks to exercise offsets.
  absl::StatusOr<std::string> ReadWholeLog(const std::string& id, const TaskRef& task);
  // Deletes every workload submitted through Submit().
  void TearDownBackend();

  std::unique_ptr<Backend> backend_;
  std::string image_;
  std::vector<std::string> submitted_;
};

class BackendConformanceTest : public ::testing::TestWithParam<ConformanceTarget>,
                               public BackendTestBase {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::chrono::milliseconds timeout() const { return GetParam().timeout; }
  std::string scratch_dir_;
};

// The suite for kService workloads, instantiated by backends that run them, like the above. Its
// replicas are python3 HTTP servers over a directory of the test's: the backend's replicas must
// share this machine's file system and loopback.
class ServiceConformance : public BackendConformanceTest {};

}  // namespace submarine::compute::testing
