// submarine-eventbus --config FILE.yaml: the stateless ZeroMQ XSUB/XPUB event bus.
#include "common/log/log.h"
#include "common/rpc/server_runner.h"
#include "common/status/status.h"
#include "services/eventbus/eventbus_proxy.h"

int main(int argc, char** argv) {
  submarine::rpc::ServerRunner::InstallSignalHandling();
  submarine::config::v1::EventbusConfig config;
  if (!submarine::rpc::LoadConfigFromArgs(argc, argv, &config)) return 2;
  submarine::log::Init(config.server().log(), "eventbus");
  submarine::eventbus::EventbusProxy proxy(config);
  auto endpoints = proxy.Bind();
  if (!endpoints.ok()) {
    submarine::log::Get("eventbus")
        ->error("cannot start: {}", submarine::Message(endpoints.status()));
    return 1;
  }
  submarine::rpc::ServerRunner runner(config.server(), "eventbus");
  runner.AddTask(&proxy);
  runner.AddReadyField("frontend", endpoints->frontend);
  runner.AddReadyField("backend", endpoints->backend);
  return runner.Run();
}
