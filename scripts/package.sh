#!/usr/bin/env bash
# Builds the Debian packages into dist/: massa_<version>_amd64.deb (the sidecar) and
# massa-dev_<version>_amd64.deb (the C++ SDK). A separate build (build-deb/, installed under /usr)
# of only what the packages hold.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
jobs="${MASSA_JOBS:-$(nproc)}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
if [ ! -f build-deb/build.ninja ]; then
  cmake -S . -B build-deb -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
    -DMASSA_BUILD_TESTS=OFF -DMASSA_BUILD_BENCH=OFF -DMASSA_BUILD_EXAMPLES=OFF >/dev/null
fi
ninja -C build-deb -j"$jobs" massa massa_sdk massa_protocol_proto massa_googleapis_proto >/dev/null
mkdir -p dist
(cd build-deb && cpack -G DEB -B "$PWD/../dist" >/dev/null)
rm -rf dist/_CPack_Packages
ls dist/*.deb
