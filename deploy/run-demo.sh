#!/usr/bin/env bash
# Installs, builds, starts the embedded local stack (its own PostgreSQL, the event bus, every
# service, the gateway) and runs the demo against it. The stack keeps running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/build.sh
exec bash deploy/local/demo.sh
