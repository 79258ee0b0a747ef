#!/usr/bin/env bash
# The test command: provision what the tests need (Docker engine, buildx, base image, packages),
# then run the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/provision.sh
exec python3 -m pytest "$@"
