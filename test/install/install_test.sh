#!/usr/bin/env bash
# Installs massa and the SDK into a temporary prefix, writes a project with `massa new`, builds
# it against the installed SDK (not this tree), runs it beside the installed massa and calls it
# over gRPC and HTTP; then builds the Debian packages and checks their contents, and, when
# MASSA_TEST_INSTALL_DEB=1 and running as root, installs them with apt, builds the project
# against the system SDK and removes them again.
#
#   install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

# GET or POST over HTTP/1.1 with bash's /dev/tcp (no curl on a fresh machine); prints the body.
http() {  # METHOD PORT PATH [JSON]
  local method=$1 port=$2 path=$3 body=${4:-}
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$method" "$path" "${#body}" "$body" >&3
  local response
  response=$(cat <&3)
  exec 3<&-
  printf '%s' "${response#*$'\r\n\r\n'}"
}

step "cmake --install into a prefix"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/massa include/massa/sdk/function.h include/massa/sdk/version.h \
         include/massa/protocol/v1/options.pb.h lib/libmassa_sdk.a \
         lib/cmake/MassaSdk/MassaSdkConfig.cmake lib/cmake/MassaSdk/MassaSdkConfigVersion.cmake \
         lib/pkgconfig/massa-sdk.pc share/massa/proto/massa/protocol/v1/options.proto \
         share/massa/proto/google/api/annotations.proto etc/massa/massa.yaml; do
  [ -e "$prefix/$f" ] || fail "$f is not installed"
done
grep -q 'MASSA_SDK_PROTOCOL_VERSION "1.2"' "$prefix/include/massa/sdk/version.h" ||
  fail "version.h does not name protocol 1.2"
includedir=$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --variable=includedir massa-sdk)
[ "$(cd "$includedir" && pwd)" = "$(cd "$prefix/include" && pwd)" ] ||
  fail "pkg-config massa-sdk does not point into the prefix ($includedir)"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --libs massa-sdk | grep -q -- "-lmassa_sdk" ||
  fail "pkg-config massa-sdk does not link the SDK"
massa="$prefix/bin/massa"
[ -n "$("$massa" --version)" ] || fail "massa --version"

step "massa new: bad input writes nothing"
if "$massa" new Not-An-Identifier --dir "$work/bad" 2>"$work/err"; then fail "a bad name was accepted"; fi
grep -q "not a valid project name" "$work/err" || fail "no clear error for a bad name: $(cat "$work/err")"
[ ! -e "$work/bad" ] || fail "a bad name wrote something"
mkdir -p "$work/busy" && echo keep >"$work/busy/file"
if "$massa" new demo --dir "$work/busy" 2>"$work/err"; then fail "a non-empty directory was accepted"; fi
grep -q "not empty" "$work/err" || fail "no clear error for a non-empty directory"
[ "$(ls "$work/busy")" = file ] || fail "something was written into the non-empty directory"

step "massa new demo, built against the installed SDK"
"$massa" new demo --dir "$work/demo" >/dev/null
cmake -S "$work/demo" -B "$work/demo/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
grep -q "MassaSdk_DIR:PATH=$prefix/lib/cmake/MassaSdk" "$work/demo/build/CMakeCache.txt" ||
  fail "the project did not find the SDK in the prefix"
cmake --build "$work/demo/build" >/dev/null

step "the project beside the installed massa, called over gRPC and HTTP"
"$work/demo/build/demo-function" --listen "unix:$work/demo.sock" >"$work/fn.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/fn.log" && break; sleep 0.05; done
"$massa" serve --function "unix:$work/demo.sock" --data-dir "$work/data" \
  --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --admin-listen off >"$work/massa.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do grep -q "serving HTTP on" "$work/massa.log" && break; sleep 0.05; done
grpc=$(grep -o 'serving gRPC on .*' "$work/massa.log" | awk '{print $4}')
port=$(grep -o 'serving HTTP on .*' "$work/massa.log" | awk -F: '{print $NF}')
[ -n "$grpc" ] && [ -n "$port" ] || fail "massa did not start: $(cat "$work/massa.log")"
out=$("$massa" call --address "$grpc" demo.v1.Counter/Increase '{"counter_id":"a","by":2}')
[ "$out" = '{"value":"2"}' ] || fail "gRPC Increase answered $out"
out=$(http POST "$port" /counters/a/increase '{"by":3}')
[ "$out" = '{"value":"5"}' ] || fail "HTTP increase answered $out"
out=$(http GET "$port" /counters/a)
[ "$out" = '{"value":"5"}' ] || fail "HTTP get answered $out"
out=$(http GET "$port" /greet/you)
[ "$out" = '{"message":"Hello, you"}' ] || fail "HTTP greet answered $out"
out=$(http POST "$port" /counters/a/increase '{"by":-1}')
echo "$out" | grep -q "by must be positive" || fail "a failing handler answered $out"
kill "${pids[@]}"; wait 2>/dev/null || true; pids=()

step "Debian packages"
"$source/scripts/package.sh" >/dev/null
version=$(grep -o 'project(massa VERSION [0-9.]*' "$source/CMakeLists.txt" | awk '{print $3}')
deb="$source/dist/massa_${version}_amd64.deb"
dev="$source/dist/massa-dev_${version}_amd64.deb"
[ -f "$deb" ] && [ -f "$dev" ] || fail "no packages named massa{,-dev}_${version}_amd64.deb"
dpkg-deb -c "$deb" >"$work/deb.txt"
for f in ./usr/bin/massa ./lib/systemd/system/massa.service ./etc/massa/massa.yaml; do
  grep -q " $f\$" "$work/deb.txt" || fail "$f is not in the massa package"
done
# (captured first: grep -q ending a pipe early would fail it under pipefail)
info=$(dpkg-deb -I "$deb")
grep -q "^ Depends:.*libc6" <<<"$info" || fail "the massa package does not depend on libc6"
grep -q "conffiles" <<<"$info" || fail "the massa package has no conffiles"
dpkg-deb -c "$dev" >"$work/dev.txt"
for f in MassaSdkConfig.cmake libmassa_sdk.a massa-sdk.pc include/massa/sdk/function.h \
         share/massa/proto/massa/protocol/v1/options.proto; do
  grep -q "$f" "$work/dev.txt" || fail "$f is not in the massa-dev package"
done
unit=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./lib/systemd/system/massa.service)
grep -q "^ExecStart=/usr/bin/massa serve --config /etc/massa/massa.yaml" <<<"$unit" ||
  fail "the unit does not run massa serve from /etc/massa/massa.yaml"

if [ "${MASSA_TEST_INSTALL_DEB:-0}" = 1 ] && [ "$(id -u)" = 0 ]; then
  step "apt install the packages, build against the system SDK, remove them"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$deb" "$dev" >/dev/null
  [ "$(/usr/bin/massa --version)" = "$version" ] || fail "the installed massa is not $version"
  getent passwd massa >/dev/null || fail "postinst did not create the massa user"
  "$massa" new sysdemo --dir "$work/sysdemo" >/dev/null
  cmake -S "$work/sysdemo" -B "$work/sysdemo/build" -G Ninja >/dev/null
  grep -q "MassaSdk_DIR:PATH=/usr/lib/x86_64-linux-gnu/cmake/MassaSdk" \
    "$work/sysdemo/build/CMakeCache.txt" || fail "the project did not use the system SDK"
  cmake --build "$work/sysdemo/build" >/dev/null
  dpkg --purge massa-dev massa >/dev/null
  [ ! -e /usr/bin/massa ] || fail "massa is still installed"
fi
echo "PASS"
