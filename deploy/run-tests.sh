#!/usr/bin/env bash
# Installs, builds and runs every test (unit, integration against real PostgreSQL, ZeroMQ and
# processes, end-to-end). ctest's summary is the last thing printed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
BUILD_DIR=${BUILD_DIR:-build}
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${JOBS:-2}" --timeout 900
