#pragma once
// Starts a real experiment-service process on a fresh database of the run's throwaway
// PostgreSQL, with its local compute cluster under a temp directory, authorizing nobody
// (permission.insecure_no_authorization), and gives tests a gRPC stub and helpers to it.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "submarine/experiment/v1/experiment.grpc.pb.h"
#include "tests/integration/environment/environment_fixture.h"
#include "tests/support/grpc_errors.h"
#include "tests/support/process.h"
#include "tests/support/test_postgres.h"

namespace submarine::testing {

struct ExperimentProcess {
  std::string dir;
  std::string dbname;
  std::string compute_dir;
  ChildProcess process;
  ReadyInfo ready;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<submarine::experiment::v1::ExperimentService::Stub> stub;
};

// Starts the service (again, on the same database and compute dir, when `previous` is given:
// a restart after a crash). `local_yaml` adds keys to the `local:` block ("  key: value\n").
// `control_interval_ms` 0 leaves the service's default.
absl::StatusOr<std::unique_ptr<ExperimentProcess>> StartExperimentService(
    const ExperimentProcess* previous = nullptr, const std::string& local_yaml = "",
    int control_interval_ms = 50);

// An environment service (environment profiles, compute clusters) and an experiment service
// that reads them (its peer), both on fresh databases, sharing one internal secret under `dir`.
// `experiment_yaml` adds top-level keys to the experiment service's config.
struct ExperimentWithEnvironment {
  std::unique_ptr<EnvironmentProcess> env;
  std::unique_ptr<ExperimentProcess> svc;
};
absl::StatusOr<ExperimentWithEnvironment> StartExperimentWithEnvironment(
    const std::string& dir, const std::string& experiment_yaml = "");

// A client context with a deadline and an optional request id.
std::unique_ptr<grpc::ClientContext> ExperimentCtx(const std::string& request_id = "");

// Creates `experiment` under projects/p.
grpc::Status CreateExperimentIn(ExperimentProcess& svc,
                                const submarine::experiment::v1::Experiment& experiment,
                                submarine::experiment::v1::Experiment* out);
// Polls GetExperiment until the experiment is final (SUCCEEDED or later) or 60 s passed (a
// test failure naming the state it stayed in); returns the last experiment read.
submarine::experiment::v1::Experiment WaitExperimentFinal(ExperimentProcess& svc,
                                                          const std::string& name);
// A task's whole log through GetExperimentLogs (a test failure when the call fails).
std::string ExperimentTaskLog(ExperimentProcess& svc, const std::string& name,
                              const std::string& task);

}  // namespace submarine::testing
