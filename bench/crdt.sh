#!/usr/bin/env bash
# Benchmarks of CRDT entities (issue 14), loopback only, bounded:
#   1. PNCounter increments (the likes example's Like) over 1,000 keys against a value entity
#      doing the same (the bank's Deposit), 32 in flight, alternating rounds in the same run;
#   2. the same increments on one hot key;
#   3. ORSet adds and removes (Rooms.Join / Leave) over 1,000 rooms;
#   4. the library's merge cost per delta (massa-crdt-bench), per type.
# Results: one JSON record per line in bench/results/crdt-<timestamp>.jsonl.
#
#   bench/crdt.sh                         # about 2 minutes on 2 cores
#   MASSA_BENCH_SECONDS=2 bench/crdt.sh   # shorter
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh massa likes-function bank-function massa-loadgen massa-crdt-bench >/dev/null

seconds="${MASSA_BENCH_SECONDS:-5}"
build=build
massa="$build/src/cli/massa"
loadgen="$build/bench/massa-loadgen"
mkdir -p bench/results
out="bench/results/crdt-$(date -u +%Y%m%d-%H%M%S).jsonl"
# shellcheck source=bench/lib.sh
. bench/lib.sh
record "{\"scenario\":\"machine\",\"date\":\"$(date -u +%FT%TZ)\",\"cpus\":$(nproc),\"commit\":\"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\",\"seconds_per_scenario\":$seconds}"

# ---- 1. and 2. Counters -------------------------------------------------------------------
start_function bank "$build/examples/bank/bank-function"
bank_sock=$fn_sock
start_function likes "$build/examples/likes/likes-function"
likes_sock=$fn_sock
crdt=() value=() hot=()
for round in 1 2 3; do
  fn_sock=$likes_sock
  start_massa "likes-r$round"
  crdt+=("$(load "pncounter-1000-c32-r$round" --method example.likes.Likes/Like \
    --body '{"article_id":"a{key}"}' --keys 1000 --concurrency 32 --duration "$seconds")")
  hot+=("$(load "pncounter-hot-c32-r$round" --method example.likes.Likes/Like \
    --body '{"article_id":"hot"}' --keys 1 --concurrency 32 --duration "$seconds")")
  stop_massa
  fn_sock=$bank_sock
  start_massa "bank-r$round"
  value+=("$(load "value-counter-1000-c32-r$round" --method example.bank.Accounts/Deposit \
    --body '{"account_id":"a{key}","amount_cents":1}' --keys 1000 --concurrency 32 \
    --duration "$seconds")")
  stop_massa
done
c=$(median "${crdt[@]}") v=$(median "${value[@]}") h=$(median "${hot[@]}")
echo "increments/s (medians of 3 rounds, 32 in flight): PNCounter over 1,000 keys $c," \
  "value entity $v; PNCounter on one hot key $h"
record "{\"scenario\":\"counters\",\"pncounter_1000_per_s\":$c,\"value_entity_1000_per_s\":$v,\"pncounter_hot_per_s\":$h}"

# ---- 3. ORSet ------------------------------------------------------------------------------
fn_sock=$likes_sock
start_massa orset
joins=$(load orset-join-c32 --method example.likes.Rooms/Join \
  --body '{"room_id":"r{key}","user":"u{key}"}' --keys 1000 --concurrency 32 --duration "$seconds")
leaves=$(load orset-leave-c32 --method example.likes.Rooms/Leave \
  --body '{"room_id":"r{key}","user":"u{key}"}' --keys 1000 --concurrency 32 --duration "$seconds")
stop_massa
echo "ORSet over 1,000 rooms, 32 in flight: $joins adds/s, $leaves removes/s"
record "{\"scenario\":\"orset\",\"adds_per_s\":$joins,\"removes_per_s\":$leaves}"

# ---- 4. Merge cost -------------------------------------------------------------------------
"$build/bench/massa-crdt-bench" --json-out "$out"
echo "results: $out"
