#!/usr/bin/env bash
# Configures and builds Massa into build/ (Ninja, ccache when present). Extra arguments are
# passed to ninja (e.g. target names).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${MASSA_JOBS:-$(nproc)}"
# Let ccache reuse objects across clones of the repository in other folders (CI).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${MASSA_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
fi
ninja -C build -j"$jobs" "$@"
