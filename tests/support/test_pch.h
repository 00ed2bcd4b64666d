#pragma once
// The precompiled header of every test executable (tests/CMakeLists.txt, submarine_test): the
// third-party headers nearly every test includes. Parsing them was about half of a test's
// compile. Only headers that do not change with the project belong here — one of ours would
// rebuild every test whenever it changed.

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
