// submarine-gateway --config FILE.yaml: the REST/JSON and gRPC front door (see gateway.h).
#include "common/log/log.h"
#include "common/rpc/server_runner.h"
#include "common/status/status.h"
#include "gateway/gateway.h"
#include "submarine/config/v1/config.pb.h"

int main(int argc, char** argv) {
  submarine::rpc::ServerRunner::InstallSignalHandling();
  submarine::config::v1::GatewayConfig config;
  if (!submarine::rpc::LoadConfigFromArgs(argc, argv, &config)) return 2;
  submarine::log::Init(config.server().log(), "gateway");

  submarine::gateway::Gateway gateway(config);
  if (auto st = gateway.Init(); !st.ok()) {
    submarine::log::Get("gateway")->error("cannot start: {}", submarine::Message(st));
    return 1;
  }
  submarine::rpc::ServerRunner runner(gateway.RunnerConfig(), "submarine-gateway");
  gateway.Register(&runner);
  return runner.Run();
}
