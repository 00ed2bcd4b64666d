// submarine-experiment --config FILE.yaml: the experiment service.
#include "services/experiment/experiment_app.h"

int main(int argc, char** argv) {
  return submarine::rpc::RunService<submarine::config::v1::ExperimentServiceConfig>(
      argc, argv, submarine::experiment::Spec(), submarine::experiment::Build);
}
