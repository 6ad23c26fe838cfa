#!/usr/bin/env bash
# Installs every Debian package that building, running and testing Massa needs.
# Idempotent: when everything is present it only checks, in well under a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache lld pkg-config
  protobuf-compiler libprotobuf-dev protobuf-compiler-grpc libgrpc++-dev
  librocksdb-dev libboost1.81-dev zlib1g-dev
  libpq-dev postgresql-15
  etcd-server etcd-client golang-etcd-server-dev golang-github-gogo-protobuf-dev
  libspdlog-dev libfmt-dev libcli11-dev libyaml-cpp-dev libxxhash-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev
  curl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
