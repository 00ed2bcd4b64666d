#pragma once
// Reading passwords and other secrets: never from the command line (where `ps` and shell history
// would show them), only from standard input or from the terminal with echo off.

#include <istream>
#include <string>

#include "absl/status/statusor.h"

namespace submarine::cli {

// One line of `in` without its line ending. INVALID_ARGUMENT naming `what` if `in` is at its end
// or the line is empty.
absl::StatusOr<std::string> ReadSecretLine(std::istream& in, const std::string& what);

// Prompts on the controlling terminal (/dev/tty) with `prompt` and reads a line with echo off.
// FAILED_PRECONDITION if there is no terminal (then the caller should offer a --*-stdin flag,
// named in `stdin_flag` for the message).
absl::StatusOr<std::string> PromptSecret(const std::string& prompt, const std::string& stdin_flag);

// Prompts on the terminal with echo on (e.g. for a username). FAILED_PRECONDITION without one.
absl::StatusOr<std::string> PromptLine(const std::string& prompt);

}  // namespace submarine::cli
