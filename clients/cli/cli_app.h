#pragma once
// The `submarine` command line: argument parsing (CLI11) and dispatch to the command functions.

#include <iostream>

namespace submarine::cli {

// Parses `argv` and runs the command. Results go to `out`, errors to `err` as
// "error: <CODE>: <message>". Returns the process exit code: 0 on success, 1 on a failed command
// (or an unhealthy stack for `local status`), CLI11's code for usage errors.
int RunCli(int argc, char** argv, std::ostream& out = std::cout, std::ostream& err = std::cerr,
           std::istream& in = std::cin);

}  // namespace submarine::cli
