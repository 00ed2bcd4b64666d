#include "common/util/wait.h"

#include <algorithm>
#include <thread>

namespace submarine {

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto step = std::chrono::milliseconds(2);
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);  // polling a condition with a deadline
    step = std::min(step * 2, std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace submarine
