#!/usr/bin/env bash
# Benchmarks of the actor mesh (issue 13), loopback only, bounded:
#   1. nested call latency: Node.Relay on one node (a direct command) against Node.Relay on A
#      whose handler calls Node.Relay on B with ctx.Call (the mesh test function), 1 in flight,
#      alternating rounds in the same run;
#   2. transfers/s in the bank example (each: a call to withdraw, a call to deposit, a publish
#      to the audit channel), 1,000 source accounts, 32 in flight, against direct deposits in
#      the same run; then how fast the audit messages drain into the auditor (one named actor);
#   3. a channel with 1,000 subscribers: 1,000 spawned rooms (passivated between messages) plus
#      the hub, an action and one keyed node; messages published one after another, timed until
#      every delivery is applied: messages/s and deliveries/s.
# Results: one JSON record per line in bench/results/mesh-<timestamp>.jsonl.
#
#   bench/mesh.sh                                  # about 2 minutes on 2 cores
#   MASSA_BENCH_SECONDS=2 MASSA_BENCH_MESSAGES=5 bench/mesh.sh   # shorter
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh massa bank-function mesh-function massa-loadgen >/dev/null

seconds="${MASSA_BENCH_SECONDS:-5}"
messages="${MASSA_BENCH_MESSAGES:-20}"
build=build
massa="$build/src/cli/massa"
loadgen="$build/bench/massa-loadgen"
mkdir -p bench/results
out="bench/results/mesh-$(date -u +%Y%m%d-%H%M%S).jsonl"
# shellcheck source=bench/lib.sh
. bench/lib.sh
record "{\"scenario\":\"machine\",\"date\":\"$(date -u +%FT%TZ)\",\"cpus\":$(nproc),\"commit\":\"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\",\"seconds_per_scenario\":$seconds,\"messages\":$messages}"
# drain: waits until the outbox is empty and no delivery is in flight (at most 10 minutes).
drain() {
  for _ in $(seq 6000); do
    if curl -sf "http://$admin/v1/outbox?limit=1" | grep -q '"pending":\[\]' &&
       [ "$(metric massa_outbox_in_flight)" = 0 ]; then return 0; fi
    sleep 0.1
  done
  echo "the outbox did not drain" >&2; return 1
}

# ---- 1. Nested call latency ---------------------------------------------------------------
node=massa.test.mesh.Node
start_function mesh "$build/test/integration/mesh-function" MASSA_FUNCTION_HANDLER_THREADS=2
start_massa calls
direct=() nested=()
for round in 1 2 3; do
  load "direct-r$round" --method "$node/Relay" --body '{"node_id":"d{key}"}' --keys 1000 \
    --duration "$seconds" >/dev/null
  direct+=("$(field "direct-r$round" p50_us)")
  load "nested-r$round" --method "$node/Relay" --body '{"node_id":"a{key}","then":["b{key}"]}' \
    --keys 1000 --duration "$seconds" >/dev/null
  nested+=("$(field "nested-r$round" p50_us)")
done
stop_massa
d=$(median "${direct[@]}") n=$(median "${nested[@]}")
echo "nested call: p50 ${n} us against ${d} us for a direct command (medians of 3 rounds)"
record "{\"scenario\":\"nested-call\",\"direct_p50_us\":$d,\"nested_p50_us\":$n}"

# ---- 2. Transfers -------------------------------------------------------------------------
accounts=example.bank.Accounts
start_function bank "$build/examples/bank/bank-function" MASSA_FUNCTION_HANDLER_THREADS=32
start_massa bank
load open-1000 --method "$accounts/Deposit" --body '{"account_id":"a{key}","amount_cents":1000000000}' \
  --keys 1000 --sequential-keys --requests 1000 --concurrency 32 --duration 300 --warmup 0 >/dev/null
drain
deposits=() transfers=()
for round in 1 2 3; do
  deposits+=("$(load "deposit-c32-r$round" --method "$accounts/Deposit" \
    --body '{"account_id":"a{key}","amount_cents":1}' --keys 1000 --concurrency 32 \
    --duration "$seconds")")
  delivered_before=$(metric massa_outbox_delivered_total)
  transfers+=("$(load "transfer-c32-r$round" --method example.bank.Bank/Transfer \
    --body '{"transfer_id":"t","from_account":"a{key}","to_account":"b{key}","amount_cents":1}' \
    --keys 1000 --concurrency 32 --duration "$seconds")")
  started=$(date +%s.%N)
  drain
  drained=$(date +%s.%N)
done
audited=$(( $(metric massa_outbox_delivered_total) - delivered_before ))
audit_rate=$(awk -v n="$audited" -v a="$started" -v b="$drained" 'BEGIN {printf "%.0f", n / (b - a)}')
stop_massa
dep=$(median "${deposits[@]}") tr=$(median "${transfers[@]}")
tr_p50=$(field transfer-c32-r2 p50_us) tr_p99=$(field transfer-c32-r2 p99_us)
echo "transfers: $tr/s (round 2: p50 ${tr_p50} us, p99 ${tr_p99} us) against $dep deposits/s;" \
  "the last round's audit backlog drained after the load at about $audit_rate/s into one auditor"
record "{\"scenario\":\"transfers\",\"transfers_per_s\":$tr,\"deposits_per_s\":$dep,\"transfer_p50_us\":$tr_p50,\"transfer_p99_us\":$tr_p99,\"audit_drain_per_s\":$audit_rate}"

# ---- 3. A channel with 1,000 subscribers ----------------------------------------------------
start_function mesh-channel "$build/test/integration/mesh-function" \
  MASSA_FUNCTION_HANDLER_THREADS=2
start_massa channel
load spawn-1000 --method massa.test.mesh.Front/Spawn --body '{"name":"r{key}"}' --keys 1000 \
  --sequential-keys --requests 1000 --concurrency 16 --duration 300 --warmup 0 >/dev/null
sleep 2  # the rooms passivate (300 ms idle)
delivered_before=$(metric massa_outbox_delivered_total)
started=$(date +%s.%N)
load "publish-$messages" --method massa.test.mesh.Front/Announce --body '{"text":"m{key}"}' \
  --keys "$messages" --sequential-keys --requests "$messages" --concurrency 1 --duration 300 \
  --warmup 0 >/dev/null
drain
finished=$(date +%s.%N)
delivered=$(( $(metric massa_outbox_delivered_total) - delivered_before ))
rss=$(rss_kb "$massa_pid")
stop_massa
rates=$(awk -v m="$messages" -v n="$delivered" -v a="$started" -v b="$finished" \
  'BEGIN {printf "%.2f %.0f", m / (b - a), n / (b - a)}')
read -r msg_rate delivery_rate <<<"$rates"
echo "channel with 1,000 spawned subscribers (+ hub, action, node): $messages messages in" \
  "$(awk -v a="$started" -v b="$finished" 'BEGIN {printf "%.1f", b - a}') s: $msg_rate messages/s," \
  "$delivery_rate deliveries/s ($delivered applied, each once); massa RSS ${rss} kB"
record "{\"scenario\":\"channel-1000\",\"messages\":$messages,\"deliveries\":$delivered,\"messages_per_s\":$msg_rate,\"deliveries_per_s\":$delivery_rate,\"rss_kb\":$rss}"
echo "results: $out"
