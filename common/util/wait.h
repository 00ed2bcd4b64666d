#pragma once
// Waiting for a condition with a deadline: polls `done` with a short backoff (2 ms doubling to
// 50 ms) and returns false if it is still false after `timeout`. For conditions with no event to
// block on (a file appearing, a process exiting); never a fixed sleep.

#include <chrono>
#include <functional>

namespace submarine {

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);

}  // namespace submarine
