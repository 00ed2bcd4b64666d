// submarine-task-supervisor: see common/compute/task_supervisor.h.
#include <cstdio>
#include <string>

#include "common/compute/task_supervisor.h"

int main(int argc, char** argv) {
  auto args = submarine::compute::local::ParseSupervisorArgs(argc, argv);
  if (!args.ok()) {
    std::fprintf(stderr, "submarine-task-supervisor: %s\n",
                 std::string(args.status().message()).c_str());
    return 2;
  }
  return submarine::compute::local::RunTaskSupervisor(*args);
}
