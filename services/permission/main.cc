// submarine-permission --config FILE.yaml: users, teams, projects, tokens, access control,
// quotas, credentials and the audit log.
#include "services/permission/permission_app.h"

int main(int argc, char** argv) {
  return submarine::rpc::RunService<submarine::config::v1::PermissionServiceConfig>(
      argc, argv, submarine::permission::Spec(), submarine::permission::Build);
}
