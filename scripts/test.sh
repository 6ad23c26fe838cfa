#!/usr/bin/env bash
# Installs what the tests need, builds everything and runs the whole test suite: unit tests,
# the store contract suite and the integration tests that start the real binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
cd build
ctest --output-on-failure -j"${MASSA_JOBS:-$(nproc)}" --timeout 300 "$@"
