#!/usr/bin/env bash
# Demo of the embedded local stack: start it, then create, read, list and delete environments
# through the CLI, curl (the v1 API and the Apache Submarine compatible /api/v1 face) and the
# Python SDK. Leaves the stack running.
#
#   BUILD_DIR=build deploy/local/demo.sh        # after: cmake --build build
#
# Environment: BUILD_DIR (default "build", relative to the repository root), DATA_DIR (default:
# the CLI's default data dir), GATEWAY_PORT (default 8080; 0 = any free port).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
SUBMARINE="$BUILD_DIR/bin/submarine"
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
DATA_ARGS=()
if [[ -n "${DATA_DIR:-}" ]]; then DATA_ARGS=(--data-dir "$DATA_DIR"); fi
if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

for bin in submarine submarine-eventbus submarine-environment submarine-gateway; do
  if [[ ! -x "$BUILD_DIR/bin/$bin" ]]; then
    echo "missing $BUILD_DIR/bin/$bin; build first: cmake --build $BUILD_DIR" >&2
    exit 1
  fi
done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }

step "Start the local stack (PostgreSQL, event bus, environment service, gateway)"
show "$SUBMARINE" local up "${DATA_ARGS[@]}" --gateway-port "$GATEWAY_PORT"
# The CLI and the SDK find the gateway through the stack's state file; curl needs its URL.
SUBMARINE_SERVER="$("$SUBMARINE" local status "${DATA_ARGS[@]}" -o json |
  "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["gatewayUrl"])')"
export SUBMARINE_SERVER
API="$SUBMARINE_SERVER"
echo "gateway: $API"

step "Create an environment from YAML with the CLI"
"$SUBMARINE" environment delete notebook-py311 >/dev/null 2>&1 || true
show "$SUBMARINE" environment create -f "$ROOT/deploy/local/examples/environment.yaml"
show "$SUBMARINE" environment get notebook-py311 -o yaml

step "CRUD with curl on /v1/projects/default/environments"
curl -s -X DELETE "$API/v1/projects/default/environments/curl-env" >/dev/null || true
show curl -sS -X POST "$API/v1/projects/default/environments?environmentId=curl-env" \
  -H 'Content-Type: application/json' \
  -d '{"displayName":"From curl","image":"python:3.11-slim","labels":{"source":"curl"}}'
echo
show curl -sS "$API/v1/projects/default/environments/curl-env"
echo
show curl -sS -X PATCH "$API/v1/projects/default/environments/curl-env?updateMask=description" \
  -H 'Content-Type: application/json' -d '{"description":"patched with curl"}'
echo
show curl -sS -G "$API/v1/projects/default/environments" --data-urlencode 'pageSize=5' \
  --data-urlencode 'filter=labels.source = "curl"'
echo
show curl -sS -X DELETE "$API/v1/projects/default/environments/curl-env"
echo
show curl -sS "$API/v1/projects/default/environments/curl-env"
echo

step "The Apache Submarine compatible face: /api/v1/environment"
curl -s -X DELETE "$API/api/v1/environment/legacy-env" >/dev/null || true
show curl -sS -X POST "$API/api/v1/environment" -H 'Content-Type: application/json' \
  -d '{"name": "legacy-env", "dockerImage": "continuumio/anaconda3",
       "kernelSpec": {"name": "team_default_python_3.7", "channels": ["defaults"],
                      "condaDependencies": [], "pipDependencies": []}}'
echo
show curl -sS "$API/api/v1/environment/legacy-env"
echo
show curl -sS "$API/api/v1/environment"
echo
show curl -sS -X DELETE "$API/api/v1/environment/legacy-env"
echo

step "List with the Python SDK (PYTHONPATH=clients/python)"
printf '$ %s\n' "$PYTHON -c 'from submarine import Client; ...'"
PYTHONPATH="$ROOT/clients/python" "$PYTHON" - <<'PY'
from submarine import Client, SubmarineError

client = Client()  # $SUBMARINE_SERVER
for env in client.environments.list(page_size=10):
    print(f"{env['name']:<50} {env['image']}")
try:
    client.environments.get("does-not-exist")
except SubmarineError as e:
    print("expected error:", e)
PY

step "Status"
show "$SUBMARINE" local status "${DATA_ARGS[@]}"

cat <<EOF2

The stack keeps running at $API.
  list:  $SUBMARINE environment list ${DATA_ARGS[*]}
  stop:  $SUBMARINE local down ${DATA_ARGS[*]}
EOF2
