#!/usr/bin/env bash
# Benchmarks of effectively-once and durable time (issue 12), loopback only, bounded:
#   1. idempotent writes against plain writes (the cart's AddItem, 1,000 keys, 32 in flight),
#      alternating rounds in the same run;
#   2. scheduling: orders placed, each with its payment-deadline timer and an outbox record
#      (the report event), MASSA_BENCH_TIMERS of them (default 1,000,000): place rate, outbox
#      deliveries per second, RSS as the count grows, store size, and RSS after a restart
#      with them all scheduled against a restart with 10,000;
#   3. firing: 10,000 report entities each with a 1 s interval timer, i.e. 10,000 fires/s:
#      fires per second and lateness (due time to fire) p50/p99 from massa's histogram.
# Results: one JSON record per line in bench/results/effects-<timestamp>.jsonl.
#
#   bench/effects.sh                               # about 6 minutes on 2 cores
#   MASSA_BENCH_TIMERS=100000 MASSA_BENCH_SECONDS=3 bench/effects.sh   # shorter
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh massa shopping-cart-function orders-function massa-loadgen >/dev/null

seconds="${MASSA_BENCH_SECONDS:-5}"
timers="${MASSA_BENCH_TIMERS:-1000000}"
build=build
massa="$build/src/cli/massa"
loadgen="$build/bench/massa-loadgen"
mkdir -p bench/results
out="bench/results/effects-$(date -u +%Y%m%d-%H%M%S).jsonl"
# shellcheck source=bench/lib.sh
. bench/lib.sh

record "{\"scenario\":\"machine\",\"date\":\"$(date -u +%FT%TZ)\",\"cpus\":$(nproc),\"commit\":\"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\",\"seconds_per_scenario\":$seconds,\"timers\":$timers}"

# ---- 1. Idempotent writes against plain writes ------------------------------------------------
cart=example.shoppingcart.ShoppingCart
add='{"cart_id":"c{key}","product_id":"p","quantity":1}'
start_function cart "$build/examples/shopping-cart/shopping-cart-function"
start_massa idem
plain=() keyed=()
for round in 1 2 3; do
  plain+=("$(load "plain-write-c32-r$round" --method "$cart/AddItem" --body "$add" --keys 1000 \
    --concurrency 32 --duration "$seconds")")
  keyed+=("$(load "idempotent-write-c32-r$round" --method "$cart/AddItem" --body "$add" \
    --keys 1000 --concurrency 32 --duration "$seconds" --idempotency-keys)")
done
stop_massa
p=$(median "${plain[@]}") k=$(median "${keyed[@]}")
overhead=$(awk -v p="$p" -v k="$k" 'BEGIN {printf "%.1f", (p - k) * 100 / p}')
cpu_of() {  # SCENARIO-PREFIX: the median of massa's CPU per call over the rounds
  median $(grep "\"scenario\":\"$1" "$out" | grep -o '"cpu_us_per_call":[0-9.]*' | cut -d: -f2)
}
cpu_plain=$(cpu_of plain-write) cpu_keyed=$(cpu_of idempotent-write)
echo "writes/s, median of 3 rounds: plain $p, with an idempotency key $k: ${overhead}% fewer;" \
  "massa CPU per write ${cpu_plain} us against ${cpu_keyed} us"
record "{\"scenario\":\"idempotency-overhead\",\"plain_per_s\":$p,\"keyed_per_s\":$k,\"overhead_pct\":$overhead,\"cpu_us_plain\":$cpu_plain,\"cpu_us_keyed\":$cpu_keyed}"

# ---- 2. Scheduling MASSA_BENCH_TIMERS timers --------------------------------------------------
orders=example.orders.Orders
start_function orders "$build/examples/orders/orders-function"
place='{"order_id":"o{key}","customer":"c","total_cents":100,"payment_window_ms":86400000}'
# A small store first: the RSS after a restart with 10,000 timers, the reference.
start_massa small --passivation-timeout 2s
load place-10k --method "$orders/Place" --body "$place" --keys 10000 --sequential-keys \
  --requests 10000 --concurrency 32 --duration 300 --warmup 0 >/dev/null
stop_massa
start_massa small
sleep 3
rss_small=$(rss_kb "$massa_pid")
stop_massa

start_massa big --passivation-timeout 2s
rss_start=$(rss_kb "$massa_pid")
delivered_before=$(metric massa_outbox_delivered_total)
started=$(date +%s.%N)
(
  # RSS as the count grows, sampled every second.
  while kill -0 "$massa_pid" 2>/dev/null; do
    echo "$(date +%s.%N) $(rss_kb "$massa_pid")" >>"$work/rss.txt"
    sleep 1
  done
) &
rate=$(load "place-$timers" --method "$orders/Place" --body "$place" --keys "$timers" \
  --sequential-keys --requests "$timers" --concurrency 32 --duration 600 --warmup 0)
placed_at=$(date +%s.%N)
rss_peak=$(awk 'max < $2 {max = $2} END {print max}' "$work/rss.txt")
# The report events drain through the outbox into one report entity (a hot key).
for _ in $(seq 1200); do
  [ "$(curl -sf "http://$admin/v1/outbox?limit=1" | grep -c '"pending":\[\]')" = 1 ] && break
  sleep 0.5
done
drained_at=$(date +%s.%N)
delivered=$(( $(metric massa_outbox_delivered_total) - delivered_before ))
outbox_rate=$(awk -v n="$delivered" -v a="$started" -v b="$drained_at" 'BEGIN {printf "%.0f", n / (b - a)}')
sleep 3  # idle entities passivate
rss_end=$(rss_kb "$massa_pid")
stop_massa
store_kb=$(du -sk "$work/data-big" | awk '{print $1}')
start_massa big
sleep 3
rss_restart=$(rss_kb "$massa_pid")
in_memory=$(metric massa_timers_in_memory)
stop_massa
echo "scheduling: $timers orders placed at $rate/s (each: state, timer, outbox record in one write)"
echo "outbox: $delivered report events delivered at $outbox_rate/s to one report entity"
echo "RSS: at start ${rss_start} kB, peak while placing ${rss_peak} kB, after ${rss_end} kB"
echo "store: ${store_kb} kB for $timers orders with their timers"
echo "RSS after a restart: ${rss_restart} kB with $timers timers scheduled (${in_memory} in memory), ${rss_small} kB with 10000"
record "{\"scenario\":\"timers-scheduled\",\"timers\":$timers,\"place_per_s\":$rate,\"outbox_delivered\":$delivered,\"outbox_per_s\":$outbox_rate,\"rss_start_kb\":$rss_start,\"rss_peak_kb\":$rss_peak,\"rss_end_kb\":$rss_end,\"store_kb\":$store_kb,\"rss_restart_kb\":$rss_restart,\"rss_restart_10k_kb\":$rss_small,\"timers_in_memory\":$in_memory}"
cp "$work/rss.txt" "${out%.jsonl}-rss.txt"

# ---- 3. Firing 10,000 timers per second ---------------------------------------------------------
reports=example.orders.Reports
start_massa fire --passivation-timeout 10m
load schedule-10k-every-1s --method "$reports/ScheduleClose" \
  --body '{"report_id":"r{key}","every_ms":1000}' --keys 10000 --sequential-keys \
  --requests 10000 --concurrency 32 --duration 300 --warmup 0 >/dev/null
sleep 3  # the first ticks
snapshot() { curl -sf "http://$admin/metrics" | grep '^massa_timer_lateness_seconds_bucket' >"$1"; }
ticks_before=$(metric massa_timer_ticks_total)
snapshot "$work/lateness-before.txt"
t0=$(date +%s.%N)
sleep $((seconds * 2))
ticks_after=$(metric massa_timer_ticks_total)
snapshot "$work/lateness-after.txt"
t1=$(date +%s.%N)
stop_massa
fires=$(awk -v n="$((ticks_after - ticks_before))" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
# p50/p99 from the histogram's buckets (delta over the window, linear within a bucket).
quantiles=$(paste "$work/lateness-before.txt" "$work/lateness-after.txt" | awk '
  { match($1, /le="[^"]*"/); le = substr($1, RSTART + 4, RLENGTH - 5)
    n++; bound[n] = (le == "+Inf") ? 1e9 : le + 0; count[n] = $4 - $2 }
  END { total = count[n]
        for (qi = 1; qi <= 2; qi++) {
          q = (qi == 1) ? 0.5 : 0.99; want = q * total; lo = 0; prev = 0
          for (i = 1; i <= n; i++) {
            if (count[i] >= want) {
              v = lo + (bound[i] - lo) * (want - prev) / ((count[i] - prev) > 0 ? count[i] - prev : 1)
              printf "%.1f ", v * 1000; break
            }
            lo = bound[i]; prev = count[i]
          }
        } }')
read -r p50 p99 <<<"$quantiles"
echo "firing: $fires fires/s (10000 timers, 1 s interval); lateness p50 ${p50} ms, p99 ${p99} ms"
record "{\"scenario\":\"timers-firing\",\"timers\":10000,\"interval_ms\":1000,\"fires_per_s\":$fires,\"lateness_p50_ms\":$p50,\"lateness_p99_ms\":$p99}"
echo "results: $out"
