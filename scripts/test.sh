#!/usr/bin/env bash
# Installs what the tests need, builds everything and runs the whole test suite: unit tests,
# the store contract suite, the integration tests that start the real binaries (the shutdown
# tests also against an AddressSanitizer build of massa, in build-asan/), the install test
# (cmake --install, `massa new`, the Debian packages built in build-deb/), and a bounded
# libFuzzer run of the HTTP transcoder (clang build in build-fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
./scripts/build-asan.sh >/dev/null
export MASSA_ASAN_BIN="$PWD/build-asan/src/cli/massa"
# The install test also installs the .deb packages with apt (and removes them) when root.
export MASSA_TEST_INSTALL_DEB=1
MASSA_FUZZ_JOBS="${MASSA_JOBS:-$(nproc)}" test/fuzz/run.sh "${MASSA_FUZZ_SECONDS:-20}"
cd build
ctest --output-on-failure -j"${MASSA_JOBS:-$(nproc)}" --timeout 300 "$@"
