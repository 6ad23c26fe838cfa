#!/usr/bin/env bash
# Builds `massa` with AddressSanitizer (and LeakSanitizer) into build-asan/, for the tests that
# stop it under load (test/integration/shutdown_test.cc runs it when MASSA_ASAN_BIN is set).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${MASSA_JOBS:-$(nproc)}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
if [ ! -f build-asan/build.ninja ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1 -fsanitize=address -fno-omit-frame-pointer" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address" \
    -DMASSA_STATIC=OFF -DMASSA_BUILD_TESTS=OFF -DMASSA_BUILD_BENCH=OFF \
    -DMASSA_BUILD_EXAMPLES=OFF >/dev/null
fi
ninja -C build-asan -j"$jobs" massa "$@"
