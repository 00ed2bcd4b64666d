#include "tests/integration/experiment/experiment_fixture.h"

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
      "server:\n  grpc_listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:0\n  shutdown_grace_ms: 5000\n  gateway_secret_file: ",
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

std::unique_ptr<grpc::ClientContext> ExperimentCtx(const std::string& request_id) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (!request_id.empty()) ctx->AddMetadata("x-request-id", request_id);
  return ctx;
}

}  // namespace submarine::testing
