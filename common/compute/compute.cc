#include "common/compute/compute.h"

namespace submarine::compute {

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kPending:
      return "PENDING";
    case Phase::kRunning:
      return "RUNNING";
    case Phase::kSucceeded:
      return "SUCCEEDED";
    case Phase::kFailed:
      return "FAILED";
    case Phase::kKilled:
      return "KILLED";
  }
  return "UNKNOWN";
}

}  // namespace submarine::compute
