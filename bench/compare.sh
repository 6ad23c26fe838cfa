#!/usr/bin/env bash
# Before/after in one run: every scenario of the suite against a baseline build of massa (and
# its example functions) and against this one, alternating scenario by scenario so that the
# machine's drift hits both alike. Records go to bench/results/compare-<timestamp>.jsonl with
# "build":"before"|"after"; a table is printed at the end.
#
#   git worktree add /tmp/massa-base <commit> && (cd /tmp/massa-base && ./scripts/build.sh \
#       massa shopping-cart-function event-sourced-cart-function)
#   bench/compare.sh /tmp/massa-base/build            # 5 s per scenario, about 8 minutes
#   MASSA_BENCH_SECONDS=2 bench/compare.sh /tmp/massa-base/build
#   MASSA_AFTER_FLAGS="--io-spin 0" bench/compare.sh /tmp/massa-base/build   # flags for "after"
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=${1:?usage: bench/compare.sh BASELINE_BUILD_DIR}
baseline=$(cd "$baseline" && pwd)
./scripts/setup.sh
./scripts/build.sh massa shopping-cart-function event-sourced-cart-function massa-loadgen \
  massa-coldstart massa-transport-bench >/dev/null
current="$PWD/build"
seconds="${MASSA_BENCH_SECONDS:-5}"
loadgen="$current/bench/massa-loadgen"
mkdir -p bench/results
out="bench/results/compare-$(date -u +%Y%m%d-%H%M%S).jsonl"
# shellcheck source=bench/lib.sh
. bench/lib.sh

echo "{\"after_flags\":\"${MASSA_AFTER_FLAGS:-}\",\"scenario\":\"machine\",\"date\":\"$(date -u +%FT%TZ)\",\"cpus\":$(nproc),\"commit\":\"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\",\"baseline\":\"$baseline\",\"seconds_per_scenario\":$seconds}" >>"$out"

# start BUILD LABEL EXAMPLE [massa flags]: the example function and massa of BUILD on a fresh
# data dir; sets fn_pid, massa_pid, massa_addr, massa_http, fn_sock.
start() {
  local build=$1 label=$2 example=$3; shift 3
  local dir="$work/$label-$RANDOM"
  mkdir -p "$dir"
  fn_sock="unix:$dir/fn.sock"
  "$build/examples/$example/$example-function" --listen "$fn_sock" >"$dir/fn.log" 2>&1 &
  fn_pid=$!
  pids+=($fn_pid)
  for _ in $(seq 100); do grep -q "listening on" "$dir/fn.log" 2>/dev/null && break; sleep 0.05; done
  "$build/src/cli/massa" serve --function "$fn_sock" --grpc-listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --admin-listen off --data-dir "$dir/data" --log-level warn "$@" \
    >"$dir/massa.log" 2>&1 &
  massa_pid=$!
  pids+=($massa_pid)
  for _ in $(seq 200); do grep -q "serving HTTP on" "$dir/massa.log" 2>/dev/null && break; sleep 0.05; done
  massa_addr=$(grep -o 'serving gRPC on .*' "$dir/massa.log" | awk '{print $4}')
  massa_http=$(grep -o 'serving HTTP on .*' "$dir/massa.log" | awk '{print $4}')
}
stop() { kill "$massa_pid" "$fn_pid" 2>/dev/null || true; wait "$massa_pid" "$fn_pid" 2>/dev/null || true; }

# measure LABEL SCENARIO MODE METHOD BODY [loadgen flags]
measure() {
  local label=$1 scenario=$2 mode=$3 method=$4 body=$5; shift 5
  local target="$massa_addr"
  [ "$mode" = http ] && target="$massa_http"
  "$loadgen" --target "$target" --mode "$mode" --method "$method" --body "$body" \
    --duration "$seconds" --scenario "$label:$scenario" --json-out "$work/one.jsonl" \
    --watch-pid "$massa_pid" "$@" >/dev/null 2>&1 || true
  tail -1 "$work/one.jsonl" | sed "s/^{/{\"build\":\"$label\",/" >>"$out"
}

cart=example.shoppingcart.ShoppingCart
front=example.shoppingcart.CartFront
escart=example.escart.ShoppingCart
add='{"cart_id":"c{key}","product_id":"p","quantity":1}'
get='{"cart_id":"c{key}"}'
hot='{"cart_id":"hot","product_id":"p","quantity":1}'
scenarios=(
  "action-c1|shopping-cart|massa|$front/ValidateItem|{\"product_id\":\"p{key}\",\"quantity\":1}|"
  "read-1000keys-c1|shopping-cart|massa|$cart/GetCart|$get|--keys 1000"
  "read-1000keys-c16|shopping-cart|massa|$cart/GetCart|$get|--keys 1000 --concurrency 16"
  "write-1000keys-c32|shopping-cart|massa|$cart/AddItem|$add|--keys 1000 --concurrency 32"
  "write-hot-c1|shopping-cart|massa|$cart/AddItem|$hot|"
  "write-hot-c8|shopping-cart|massa|$cart/AddItem|$hot|--concurrency 8"
  "http-read-1000keys-c1|shopping-cart|http|||--http-method GET --path /carts/c{key} --keys 1000"
  "http-read-1000keys-c16|shopping-cart|http|||--http-method GET --path /carts/c{key} --keys 1000 --concurrency 16"
  "http-write-1000keys-c32|shopping-cart|http||{\"productId\":\"p\",\"quantity\":1}|--http-method POST --path /carts/c{key}/items --keys 1000 --concurrency 32"
  "es-append-1000keys-c32|event-sourced-cart|massa|$escart/AddItem|$add|--keys 1000 --concurrency 32"
  "es-append-hot-c8|event-sourced-cart|massa|$escart/AddItem|$hot|--concurrency 8"
)
for entry in "${scenarios[@]}"; do
  IFS='|' read -r scenario example mode method body flags <<<"$entry"
  for label in before after; do
    build=$baseline
    [ $label = after ] && build=$current
    flags_for=()
    # shellcheck disable=SC2206
    [ $label = after ] && flags_for=(${MASSA_AFTER_FLAGS:-})
    start "$build" "$label" "$example" "${flags_for[@]}"
    # shellcheck disable=SC2086
    measure "$label" "$scenario" "$mode" "$method" "$body" $flags
    stop
  done
  echo "measured $scenario"
done

# The direct call to the function (no massa), the baseline of added latency.
start "$current" direct shopping-cart
"$loadgen" --target "$fn_sock" --mode function --method "$front/ValidateItem" \
  --body '{"product_id":"p{key}","quantity":1}' --duration "$seconds" --scenario direct-action-c1 \
  --json-out "$out" >/dev/null 2>&1 || true
# The leg to the function alone: session streams against one unary call per command.
for c in 1 64; do
  "$current/bench/massa-transport-bench" --function "$fn_sock" --concurrency $c \
    --seconds "$seconds" --json-out "$out" >/dev/null
done
stop

# Idle RSS (with the example discovered, nothing called) and cold start, of each build.
for label in before after; do
  build=$baseline
  [ $label = after ] && build=$current
  start "$build" "$label" shopping-cart
  sleep 1
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$massa_pid/status")
  anon=$(awk '/^RssAnon/ {print $2}' "/proc/$massa_pid/status")
  threads=$(awk '/^Threads/ {print $2}' "/proc/$massa_pid/status")
  echo "{\"build\":\"$label\",\"scenario\":\"$label:idle-rss\",\"rss_kb\":$rss,\"anon_kb\":$anon,\"threads\":$threads}" >>"$out"
  stop
  start "$build" "$label-cold" shopping-cart
  kill "$massa_pid"
  "$current/bench/massa-coldstart" --massa "$build/src/cli/massa" --function "$fn_sock" --runs 9 \
    --json-out "$work/cold.jsonl" >/dev/null
  tail -1 "$work/cold.jsonl" | sed "s/^{/{\"build\":\"$label\",/; s/\"scenario\":\"/\"scenario\":\"$label:/" >>"$out"
  stop
done

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    s = r.get("scenario", "")
    if ":" in s:
        build, name = s.split(":", 1)
        by.setdefault(name, {})[build] = r
print(f"{'scenario':26} {'before calls/s':>14} {'after calls/s':>14} {'p50 before':>11} {'p50 after':>10} {'p99 before':>11} {'p99 after':>10} {'cpu/call':>15} {'switches/call':>14}")
for name, b in by.items():
    x, y = b.get("before", {}), b.get("after", {})
    if "throughput" not in x and "throughput" not in y:
        print(name, json.dumps(x), json.dumps(y))
        continue
    f = lambda r, k: r.get(k, 0)
    print(f"{name:26} {f(x,'throughput'):14.0f} {f(y,'throughput'):14.0f} {f(x,'p50_us'):11.0f} {f(y,'p50_us'):10.0f} {f(x,'p99_us'):11.0f} {f(y,'p99_us'):10.0f} {f(x,'cpu_us_per_call'):7.0f}/{f(y,'cpu_us_per_call'):<7.0f} {f(x,'switches_per_call'):6.1f}/{f(y,'switches_per_call'):<6.1f}")
for r in rows:
    if r.get("scenario", "").startswith(("direct", "transport")):
        print(r["scenario"], f"{r.get('throughput', 0):.0f} calls/s p50 {r.get('p50_us', 0):.0f} us p99 {r.get('p99_us', 0):.0f} us")
PY
echo "results: $out"
