// submarine-permission --config FILE.yaml: users, teams, projects, tokens, access control,
// quotas, credentials and the audit log.
#include "common/log/log.h"
#include "common/rpc/server_runner.h"
#include "common/status/status.h"
#include "services/permission/permission_app.h"

int main(int argc, char** argv) {
  submarine::rpc::ServerRunner::InstallSignalHandling();
  submarine::config::v1::PermissionServiceConfig config;
  if (!submarine::rpc::LoadConfigFromArgs(argc, argv, &config)) return 2;
  submarine::log::Init(config.server().log(), "permission");
  auto app = submarine::permission::PermissionApp::Create(config);
  if (!app.ok()) {
    submarine::log::Get("main")->error("cannot start: {}", submarine::Message(app.status()));
    return 1;
  }
  return (*app)->runner().Run();
}
