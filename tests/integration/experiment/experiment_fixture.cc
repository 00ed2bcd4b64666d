#include "tests/integration/experiment/experiment_fixture.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"

namespace submarine::testing {

absl::StatusOr<std::unique_ptr<ExperimentProcess>> StartExperimentService(
    const ExperimentProcess* previous, const std::string& local_yaml, int control_interval_ms) {
  auto p = std::make_unique<ExperimentProcess>();
  p->dir = previous ? previous->dir : MakeTempDir("experiment-test");
  p->dbname = previous ? previous->dbname : TestPostgres::Get().CreateDatabase("experiment");
  p->compute_dir = p->dir + "/compute";
  std::string secret = p->dir + "/internal.secret";
  SUBMARINE_RETURN_IF_ERROR(
      config::WriteFileAtomic(secret, "experiment-test-internal-secret-0123456789", 0600));
  auto& pg = TestPostgres::Get();
  std::string yaml = absl::StrCat(
      "server:\n  grpc_listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\n  shutdown_grace_ms: "
      "5000\n  gateway_secret_file: ",
      secret, "\ndatabase:\n  host: ", pg.socket_dir(), "\n  port: ", pg.port(),
      "\n  dbname: ", p->dbname, "\n  user: postgres\n  schema: experiment\n",
      "permission:\n  insecure_no_authorization: true\n",
      "events:\n  publish_endpoint: \"\"\n  heartbeat_ms: 200\n",
      "local:\n  root_dir: ", p->compute_dir, "\n  supervisor_path: ", BinDir(),
      "/submarine-task-supervisor\n", local_yaml, "stop_grace_ms: 2000\n",
      control_interval_ms > 0 ? absl::StrCat("control_interval_ms: ", control_interval_ms, "\n")
                              : std::string());
  SUBMARINE_ASSIGN_OR_RETURN(
      p->process, StartService("submarine-experiment", p->dir, "experiment", yaml, &p->ready));
  p->channel = rpc::MakeChannel(p->ready.grpc);
  p->stub = submarine::experiment::v1::ExperimentService::NewStub(p->channel);
  return p;
}

absl::StatusOr<ExperimentWithEnvironment> StartExperimentWithEnvironment(
    const std::string& dir, const std::string& experiment_yaml) {
  ExperimentWithEnvironment both;
  // The services of one installation share the internal secret (the experiment fixture's).
  const std::string secret = dir + "/internal.secret";
  SUBMARINE_RETURN_IF_ERROR(
      config::WriteFileAtomic(secret, "experiment-test-internal-secret-0123456789", 0600));
  SUBMARINE_ASSIGN_OR_RETURN(both.env,
                             StartEnvironment("", "", "", "", kInsecurePermission, secret));
  SUBMARINE_ASSIGN_OR_RETURN(
      both.svc,
      StartExperimentService(nullptr, absl::StrCat("peers:\n  - name: environment\n    address: ",
                                                   both.env->ready.grpc, "\n", experiment_yaml)));
  return both;
}

std::unique_ptr<grpc::ClientContext> ExperimentCtx(const std::string& request_id) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!request_id.empty()) ctx->AddMetadata("x-request-id", request_id);
  return ctx;
}

grpc::Status CreateExperimentIn(ExperimentProcess& svc,
                                const submarine::experiment::v1::Experiment& experiment,
                                submarine::experiment::v1::Experiment* out) {
  submarine::experiment::v1::CreateExperimentRequest req;
  req.set_parent("projects/p");
  *req.mutable_experiment() = experiment;
  return svc.stub->CreateExperiment(ExperimentCtx().get(), req, out);
}

submarine::experiment::v1::Experiment WaitExperimentFinal(ExperimentProcess& svc,
                                                          const std::string& name) {
  namespace v1 = submarine::experiment::v1;
  v1::Experiment e;
  const bool final = WaitFor(
      [&] {
        v1::GetExperimentRequest req;
        req.set_name(name);
        return svc.stub->GetExperiment(ExperimentCtx().get(), req, &e).ok() &&
               e.state() >= v1::SUCCEEDED;
      },
      std::chrono::seconds(60));
  EXPECT_TRUE(final) << name << " stayed " << v1::State_Name(e.state()) << ": " << e.state_reason();
  return e;
}

std::string ExperimentTaskLog(ExperimentProcess& svc, const std::string& name,
                              const std::string& task) {
  submarine::experiment::v1::GetExperimentLogsRequest req;
  req.set_name(name);
  req.set_task(task);
  submarine::experiment::v1::ExperimentLogs out;
  grpc::Status st = svc.stub->GetExperimentLogs(ExperimentCtx().get(), req, &out);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return out.data();
}

}  // namespace submarine::testing
