// submarine-environment --config FILE.yaml: the environment-profile service.
#include "common/log/log.h"
#include "common/rpc/server_runner.h"
#include "common/status/status.h"
#include "services/environment/environment_app.h"

int main(int argc, char** argv) {
  submarine::rpc::ServerRunner::InstallSignalHandling();
  submarine::config::v1::EnvironmentServiceConfig config;
  if (!submarine::rpc::LoadConfigFromArgs(argc, argv, &config)) return 2;
  submarine::log::Init(config.server().log(), "environment");
  auto app = submarine::environment::EnvironmentApp::Create(config);
  if (!app.ok()) {
    submarine::log::Get("main")->error("cannot start: {}", submarine::Message(app.status()));
    return 1;
  }
  return (*app)->runner().Run();
}
