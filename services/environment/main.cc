// submarine-environment --config FILE.yaml: the environment-profile service.
#include "services/environment/environment_app.h"

int main(int argc, char** argv) {
  return submarine::rpc::RunService<submarine::config::v1::EnvironmentServiceConfig>(
      argc, argv, submarine::environment::Spec(), submarine::environment::Build);
}
