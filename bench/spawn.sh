#!/usr/bin/env bash
# The Spawn driver against the native protocol, same actor logic (issue 15): a deposit adds the
# amount to an account's balance, durably (RocksDB, fsync), and answers the new balance; 1,000
# accounts, loopback only, bounded.
#   spawn:   client -> massa's Spawn API (HTTP/1.1, binary protobuf InvocationRequest) -> the
#            Spawn driver -> a Spawn SDK of the bench's own (HTTP/1.1, ActorInvocation)
#   native:  client -> massa's HTTP/JSON ingress (the same client) -> Massa's protocol (gRPC
#            session streams) -> the bank example's Accounts.Deposit (the C++ SDK)
#   native-grpc: the bank example over gRPC (massa-loadgen), for reference
# Rounds alternate in one run (3 each at 32 in flight, then 1 in flight for latency); medians.
# Results: one JSON record per line in bench/results/spawn-<timestamp>.jsonl.
#
#   bench/spawn.sh                          # about 2 minutes on 2 cores
#   MASSA_BENCH_SECONDS=2 bench/spawn.sh    # shorter
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh massa bank-function massa-loadgen massa-spawn-bench >/dev/null

seconds="${MASSA_BENCH_SECONDS:-5}"
build=build
massa="$build/src/cli/massa"
loadgen="$build/bench/massa-loadgen"
bench="$build/bench/massa-spawn-bench"
mkdir -p bench/results
out="bench/results/spawn-$(date -u +%Y%m%d-%H%M%S).jsonl"
# shellcheck source=bench/lib.sh
. bench/lib.sh
record "{\"scenario\":\"machine\",\"date\":\"$(date -u +%FT%TZ)\",\"cpus\":$(nproc),\"commit\":\"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\",\"seconds_per_scenario\":$seconds}"

# The Spawn side: the bench's SDK, and massa with --protocol spawn (it registers and spawns the
# accounts when the first load starts).
"$bench" sdk >"$work/sdk.log" 2>&1 &
pids+=($!)
wait_line "$work/sdk.log" "listening on"
sdk_port=$(grep -o '[0-9]*$' "$work/sdk.log")
spawn_log="$work/massa-spawn.log"
"$massa" serve --protocol spawn --function "127.0.0.1:$sdk_port" --spawn-listen 127.0.0.1:0 \
  --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
  --data-dir "$work/data-spawn" --log-level warn >"$spawn_log" 2>&1 &
spawn_pid=$!
pids+=($spawn_pid)
wait_line "$spawn_log" "serving Spawn on"
spawn_port=$(grep -o 'serving Spawn on .*' "$spawn_log" | grep -o '[0-9]*$')

# The native side: the bank example and massa.
start_function bank "$build/examples/bank/bank-function" MASSA_FUNCTION_HANDLER_THREADS=32
start_massa bank
http_port=$(grep -o 'serving HTTP on .*' "$work"/massa-bank-*.log | grep -o '[0-9]*$')

cpu_ms() { awk '{printf "%d", ($14 + $15) * 1000 / 100}' "/proc/$1/stat"; }  # utime+stime
# LOAD MODE PORT PID SCENARIO CONCURRENCY: one closed-loop run, plus massa's CPU per call (us).
http_load() {
  local before after calls
  before=$(cpu_ms "$3")
  "$bench" load --mode "$1" --port "$2" --keys 1000 --concurrency "$5" --warmup 0 \
    --duration "$seconds" --scenario "$4" --json-out "$out" --skip-setup >/dev/null
  after=$(cpu_ms "$3")
  calls=$(awk -v r="$(field "$4" calls_per_s)" -v s="$seconds" 'BEGIN {printf "%d", r * s}')
  record "{\"scenario\":\"$4-cpu\",\"massa_cpu_us_per_call\":$(( (after - before) * 1000 / (calls > 0 ? calls : 1) ))}"
}
spawn_load() { http_load spawn "$spawn_port" "$spawn_pid" "$1" "$2"; }    # SCENARIO CONCURRENCY
native_load() { http_load native "$http_port" "$massa_pid" "$1" "$2"; }   # SCENARIO CONCURRENCY
# Registration, 1,000 spawned accounts, and a warm-up of both sides.
"$bench" load --mode spawn --port "$spawn_port" --keys 1000 --duration 1 >/dev/null
"$bench" load --mode native --port "$http_port" --keys 1000 --duration 1 >/dev/null
for concurrency in 32 1; do
  s=() n=() g=() sp=() np=() gp=() sc=() nc=()
  for round in 1 2 3; do
    spawn_load "spawn-c$concurrency-r$round" "$concurrency"
    native_load "native-c$concurrency-r$round" "$concurrency"
    load "native-grpc-c$concurrency-r$round" --method example.bank.Accounts/Deposit \
      --body '{"account_id":"a{key}","amount_cents":1}' --keys 1000 \
      --concurrency "$concurrency" --duration "$seconds" >/dev/null
    s+=("$(field "spawn-c$concurrency-r$round" calls_per_s)")
    n+=("$(field "native-c$concurrency-r$round" calls_per_s)")
    g+=("$(field "native-grpc-c$concurrency-r$round" throughput)")
    sp+=("$(field "spawn-c$concurrency-r$round" p50_us)")
    np+=("$(field "native-c$concurrency-r$round" p50_us)")
    gp+=("$(field "native-grpc-c$concurrency-r$round" p50_us)")
    sc+=("$(field "spawn-c$concurrency-r$round-cpu" massa_cpu_us_per_call)")
    nc+=("$(field "native-c$concurrency-r$round-cpu" massa_cpu_us_per_call)")
  done
  S=$(median "${s[@]}") N=$(median "${n[@]}") G=$(median "${g[@]}")
  SP=$(median "${sp[@]}") NP=$(median "${np[@]}") GP=$(median "${gp[@]}")
  SC=$(median "${sc[@]}") NC=$(median "${nc[@]}")
  echo "$concurrency in flight: spawn $S calls/s (p50 $SP us, massa CPU $SC us/call), native" \
    "over HTTP $N calls/s (p50 $NP us, massa CPU $NC us/call), native over gRPC $G calls/s" \
    "(p50 $GP us)"
  record "{\"scenario\":\"spawn-vs-native-c$concurrency\",\"spawn_calls_per_s\":$S,\"spawn_p50_us\":$SP,\"spawn_massa_cpu_us_per_call\":$SC,\"native_http_calls_per_s\":$N,\"native_http_p50_us\":$NP,\"native_http_massa_cpu_us_per_call\":$NC,\"native_grpc_calls_per_s\":$G,\"native_grpc_p50_us\":$GP}"
done
echo "massa RSS: spawn $(rss_kb "$spawn_pid") kB, native $(rss_kb "$massa_pid") kB"
record "{\"scenario\":\"rss\",\"spawn_kb\":$(rss_kb "$spawn_pid"),\"native_kb\":$(rss_kb "$massa_pid")}"
echo "results: $out"
