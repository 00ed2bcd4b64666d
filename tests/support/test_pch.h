#pragma once
// The precompiled header of every test executable (tests/CMakeLists.txt, submarine_test): the
// third-party headers nearly every test includes, parsing them was about half of a test's
// compile; and the generated protobuf headers that two thirds of the tests include anyway
// (permission.pb.h alone is 1.2 MB: 3.7 s of each compile that includes it). Headers we write by
// hand do not belong here — one of them would rebuild every test whenever it changed; a .proto
// edited changes these only when it is one of those below, which most tests depend on already.

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

#include "google/rpc/error_details.pb.h"
#include "submarine/common/v1/events.pb.h"
#include "submarine/common/v1/options.pb.h"
#include "submarine/common/v1/principal.pb.h"
#include "submarine/config/v1/config.pb.h"
#include "submarine/permission/v1/permission.pb.h"
