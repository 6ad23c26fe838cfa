#!/usr/bin/env bash
# Builds Massa's libFuzzer targets with clang (ASan + UBSan, coverage on all of Massa's code) in
# a separate build directory and runs each for a bounded time over its seed corpus.
#
# Usage: test/fuzz/run.sh [seconds per target]        (default 20)
# Environment: MASSA_FUZZ_BUILD_DIR (default <repo>/build-fuzz), MASSA_FUZZ_JOBS (ninja -j,
# default 1). The machine is shared: everything runs under `nice -n 19`.
# Exits non-zero when a target finds a crash, a leak or a broken invariant; the input is left
# in $MASSA_FUZZ_BUILD_DIR/artifacts/ (reproduce with: <fuzzer binary> <artifact>).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${MASSA_FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${1:-20}"
jobs="${MASSA_FUZZ_JOBS:-1}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
targets=(http_transcoder)

# A clang with the libFuzzer runtime (on Debian 12: clang-14 plus libclang-rt-14-dev, which
# holds libclang_rt.fuzzer-x86_64.a).
find_clang() {
  local cxx
  for cxx in clang++-14 clang++; do
    command -v "$cxx" >/dev/null 2>&1 || continue
    if ls "$("$cxx" -print-runtime-dir 2>/dev/null)"/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
      echo "$cxx"
      return 0
    fi
  done
  return 1
}

if ! cxx="$(find_clang)"; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: no clang with libFuzzer; installing clang-14 and libclang-rt-14-dev" >&2
    apt-get install -y --no-install-recommends clang-14 libclang-rt-14-dev >&2
    cxx="$(find_clang)" || { echo "run.sh: clang-14 has no libFuzzer runtime" >&2; exit 2; }
  else
    echo "run.sh: needs clang++ with libFuzzer (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 2
  fi
fi
echo "run.sh: using $(command -v "$cxx")" >&2

sanitizers="-fsanitize=address,undefined -fno-sanitize-recover=all"
nice -n 19 cmake -G Ninja -S "$root" -B "$build" \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=Fuzz \
  -DCMAKE_CXX_FLAGS="-O1 -g -fno-omit-frame-pointer -Wno-unknown-warning-option $sanitizers -fsanitize=fuzzer-no-link" \
  -DCMAKE_EXE_LINKER_FLAGS="$sanitizers" \
  -DMASSA_BUILD_TESTS=ON -DMASSA_BUILD_BENCH=OFF -DMASSA_BUILD_EXAMPLES=OFF >/dev/null
fuzzers=()
for target in "${targets[@]}"; do fuzzers+=("massa_${target}_fuzz"); done
nice -n 19 ninja -C "$build" -j"$jobs" "${fuzzers[@]}"

status=0
for target in "${targets[@]}"; do
  binary="$build/test/fuzz/massa_${target}_fuzz"
  seeds="$root/test/fuzz/corpus/$target"
  work="$build/corpus/$target"       # new inputs go here, not into the repository
  artifacts="$build/artifacts/$target/"
  mkdir -p "$work" "$artifacts"
  dict=()
  [[ -f "$root/test/fuzz/$target.dict" ]] && dict=(-dict="$root/test/fuzz/$target.dict")
  echo "run.sh: fuzzing $target for ${seconds}s" >&2
  if ! nice -n 19 "$binary" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$artifacts" "$work" "$seeds"; then
    echo "run.sh: $target FAILED; inputs in $artifacts" >&2
    status=1
  fi
done
exit $status
