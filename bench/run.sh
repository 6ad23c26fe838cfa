#!/usr/bin/env bash
# Runs every benchmark scenario of Massa on this machine, loopback only, bounded in time
# (about 6 minutes on 2 cores with the default 5 s per scenario). Each Massa figure has the
# direct call to the function (no massa in the path) beside it, and massa's CPU time and
# context switches per call. bench/compare.sh runs the same scenarios against a baseline build. Results: one JSON record per
# line in bench/results/<timestamp>.jsonl, and the table printed as it goes.
#
#   bench/run.sh                 # all scenarios
#   MASSA_BENCH_SECONDS=2 bench/run.sh   # shorter
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh massa shopping-cart-function event-sourced-cart-function massa-loadgen massa-store-bench massa-coldstart massa-transport-bench >/dev/null

seconds="${MASSA_BENCH_SECONDS:-5}"
build=build
massa="$build/src/cli/massa"
fn="$build/examples/shopping-cart/shopping-cart-function"
esfn="$build/examples/event-sourced-cart/event-sourced-cart-function"
loadgen="$build/bench/massa-loadgen"
mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%d-%H%M%S).jsonl"
# shellcheck source=bench/lib.sh
. bench/lib.sh


record "{\"scenario\":\"machine\",\"date\":\"$(date -u +%FT%TZ)\",\"cpus\":$(nproc),\"mem_kb\":$(awk '/MemTotal/ {print $2}' /proc/meminfo),\"commit\":\"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\",\"seconds_per_scenario\":$seconds}"

sock="unix:$work/function.sock"
essock="unix:$work/es-function.sock"
"$fn" --listen "$sock" >"$work/function.log" 2>&1 &
pids+=($!)
"$esfn" --listen "$essock" >"$work/es-function.log" 2>&1 &
pids+=($!)
for log in function es-function; do
  for _ in $(seq 100); do grep -q "listening on" "$work/$log.log" 2>/dev/null && break; sleep 0.05; done
done
fn_sock=$sock  # the function that start_massa and run use

# start_massa NAME [extra flags]: starts massa on a fresh data dir; sets massa_pid, massa_addr.
start_massa() {
  local name=$1; shift
  "$massa" serve --function "$fn_sock" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --admin-listen off --data-dir "$work/data-$name" --log-level warn "$@" \
    >"$work/massa-$name.log" 2>&1 &
  massa_pid=$!
  pids+=($massa_pid)
  for _ in $(seq 200); do grep -q "serving gRPC on" "$work/massa-$name.log" 2>/dev/null && break; sleep 0.05; done
  massa_addr=$(grep -o 'serving gRPC on .*' "$work/massa-$name.log" | awk '{print $4}')
  for _ in $(seq 100); do grep -q "serving HTTP on" "$work/massa-$name.log" 2>/dev/null && break; sleep 0.05; done
  massa_http=$(grep -o 'serving HTTP on .*' "$work/massa-$name.log" | awk '{print $4}')
}
stop_massa() { kill "$massa_pid"; wait "$massa_pid" 2>/dev/null || true; }

# run SCENARIO MODE METHOD BODY [loadgen flags]: one measurement, direct or through massa.
run() {
  local scenario=$1 mode=$2 method=$3 body=$4; shift 4
  local target="$massa_addr" watch=(--watch-pid "$massa_pid")
  if [ "$mode" = function ]; then target="$fn_sock"; watch=(); fi
  if [ "$mode" = http ]; then target="$massa_http"; fi
  "$loadgen" --target "$target" --mode "$mode" --method "$method" --body "$body" \
    --duration "$seconds" --scenario "$scenario" --json-out "$out" "${watch[@]}" "$@" |
    grep -v '^{' | grep -v '^scenario' || true
}

cart=example.shoppingcart.ShoppingCart
front=example.shoppingcart.CartFront
add='{"cart_id":"c{key}","product_id":"p","quantity":1}'
get='{"cart_id":"c{key}"}'

printf '%-34s %9s %9s %9s %9s %9s %9s %8s\n' scenario calls/s "p50 us" "p90 us" "p99 us" "p99.9 us" "max us" errors
start_massa main
record "{\"scenario\":\"idle-rss\",\"rss_kb\":$(rss_kb "$massa_pid")}"

run direct-action-c1        function "$front/ValidateItem" '{"product_id":"p{key}","quantity":1}'
run massa-action-c1         massa    "$front/ValidateItem" '{"product_id":"p{key}","quantity":1}'
run direct-read-1000keys-c1 function "$cart/GetCart" "$get" --keys 1000
run massa-read-1000keys-c1  massa    "$cart/GetCart" "$get" --keys 1000
run direct-read-1000keys-c16 function "$cart/GetCart" "$get" --keys 1000 --concurrency 16
run massa-read-1000keys-c16 massa    "$cart/GetCart" "$get" --keys 1000 --concurrency 16
run direct-write-1000keys-c32 function "$cart/AddItem" "$add" --keys 1000 --concurrency 32
run massa-write-1000keys-c32 massa   "$cart/AddItem" "$add" --keys 1000 --concurrency 32
run direct-write-hot-c1     function "$cart/AddItem" '{"cart_id":"hot","product_id":"p","quantity":1}'
run massa-write-hot-c1      massa    "$cart/AddItem" '{"cart_id":"hot","product_id":"p","quantity":1}'
run direct-write-hot-c8     function "$cart/AddItem" '{"cart_id":"hot","product_id":"p","quantity":1}' --concurrency 8
run massa-write-hot-c8      massa    "$cart/AddItem" '{"cart_id":"hot","product_id":"p","quantity":1}' --concurrency 8
# The same reads and writes over HTTP/JSON (google.api.http rules of the example).
run http-read-1000keys-c1   http "" "" --http-method GET --path '/carts/c{key}' --keys 1000
run http-read-1000keys-c16  http "" "" --http-method GET --path '/carts/c{key}' --keys 1000 --concurrency 16
run http-write-1000keys-c32 http "" '{"productId":"p","quantity":1}' --http-method POST --path '/carts/c{key}/items' --keys 1000 --concurrency 32
stop_massa

# The leg to the function alone (no ingress): session streams against one unary call per
# command, 1 and 64 in flight on one connection.
for c in 1 64; do
  "$build/bench/massa-transport-bench" --function "$sock" --concurrency $c --seconds "$seconds" \
    --json-out "$out"
done

# Activations: every call goes to a key never seen (a store miss, then the function).
start_massa activations --passivation-timeout 10m
n=20000
run massa-activations-c1    massa "$cart/GetCart" '{"cart_id":"a{key}"}' --keys $n --sequential-keys --requests 5000 --warmup 0
run massa-activations-c16   massa "$cart/GetCart" '{"cart_id":"b{key}"}' --keys $n --sequential-keys --requests $n --concurrency 16 --warmup 0
stop_massa

# Memory: idle, then with 100,000 active entities (each activated by one read, none written).
start_massa memory --passivation-timeout 10m
before=$(rss_kb "$massa_pid")
"$loadgen" --target "$massa_addr" --method "$cart/GetCart" --body '{"cart_id":"m{key}"}' --keys 100000 \
  --sequential-keys --requests 100000 --concurrency 32 --duration 120 --warmup 0 --scenario fill-100k \
  --json-out "$out" | grep -v '^{' | grep -v '^scenario' || true
sleep 1
after=$(rss_kb "$massa_pid")
per=$(( (after - before) * 1024 / 100000 ))
echo "RSS idle ${before} kB, with 100000 active entities ${after} kB: ${per} bytes per active entity"
record "{\"scenario\":\"rss-100k-entities\",\"rss_idle_kb\":$before,\"rss_kb\":$after,\"bytes_per_entity\":$per}"
stop_massa

# Event-sourced entities (the event-sourced cart example): every AddItem appends one event.
fn_sock=$essock
escart=example.escart.ShoppingCart
es_add='{"cart_id":"c{key}","product_id":"p","quantity":1}'
start_massa es
run direct-es-append-1000keys-c32 function "$escart/AddItem" "$es_add" --keys 1000 --concurrency 32
run massa-es-append-1000keys-c32 massa    "$escart/AddItem" "$es_add" --keys 1000 --concurrency 32
run massa-es-append-hot-c1      massa    "$escart/AddItem" '{"cart_id":"hot","product_id":"p","quantity":1}'
run massa-es-append-hot-c8      massa    "$escart/AddItem" '{"cart_id":"hot","product_id":"p","quantity":1}' --concurrency 8
stop_massa

# Activation of an entity with 10,000 events: 5 entities built with no snapshots and 5 with
# one every 100 events; after a restart, the first read of each replays it (time per read).
build_journals() {  # NAME PREFIX [massa flags]
  local name=$1 prefix=$2; shift 2
  start_massa "$name" "$@"
  "$loadgen" --target "$massa_addr" --method "$escart/AddItem" \
    --body "{\"cart_id\":\"$prefix{key}\",\"product_id\":\"p\",\"quantity\":1}" \
    --keys 5 --sequential-keys --requests 50000 --concurrency 10 --warmup 0 --duration 300 \
    --scenario "es-build-$name" --json-out "$out" | grep -v '^{' | grep -v '^scenario' || true
  stop_massa
}
build_journals es-nosnap n --snapshot-every 0
build_journals es-snap s --snapshot-every 100
start_massa es-nosnap --snapshot-every 0
run massa-es-activate-10k-events-nosnapshot massa "$escart/GetCart" '{"cart_id":"n{key}"}' \
  --keys 5 --sequential-keys --requests 5 --warmup 0
stop_massa
start_massa es-snap
run massa-es-activate-10k-events-snapshot100 massa "$escart/GetCart" '{"cart_id":"s{key}"}' \
  --keys 5 --sequential-keys --requests 5 --warmup 0
stop_massa
fn_sock=$sock

# PostgreSQL (a throwaway PostgreSQL 15 on loopback, fsync on): the same durable writes,
# activations and event appends as on RocksDB above.
pg_uri=$(./scripts/postgres-throwaway.sh start "$work/pg")
stop_pg() { ./scripts/postgres-throwaway.sh stop "$work/pg"; }
trap 'stop_pg; cleanup' EXIT
start_massa pg --store "$pg_uri" --passivation-timeout 10m
run pg-write-1000keys-c32     massa "$cart/AddItem" "$add" --keys 1000 --concurrency 32
run pg-write-hot-c8           massa "$cart/AddItem" '{"cart_id":"hot","product_id":"p","quantity":1}' --concurrency 8
run pg-activations-c16        massa "$cart/GetCart" '{"cart_id":"pa{key}"}' --keys 20000 --sequential-keys --requests 10000 --concurrency 16 --warmup 0
stop_massa
fn_sock=$essock
start_massa pg-es --store "$pg_uri"
run pg-es-append-1000keys-c32 massa "$escart/AddItem" "$es_add" --keys 1000 --concurrency 32
run pg-es-append-hot-c8       massa "$escart/AddItem" '{"cart_id":"hot","product_id":"p","quantity":1}' --concurrency 8
stop_massa
fn_sock=$sock
stop_pg

"$build/bench/massa-store-bench" --seconds "$seconds" --dir "$work/store-bench" --json-out "$out"
"$build/bench/massa-coldstart" --massa "$massa" --function "$sock" --runs 9 --json-out "$out"
echo "results: $out"
