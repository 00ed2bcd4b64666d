// The `submarine` command; everything lives in submarine_cli_lib (clients/cli/cli_app.h).
#include "clients/cli/cli_app.h"

int main(int argc, char** argv) { return submarine::cli::RunCli(argc, argv); }
