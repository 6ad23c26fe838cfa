#!/usr/bin/env bash
# The cluster (docs/cluster.md), on loopback, in one run: a throwaway etcd and PostgreSQL, three
# shopping-cart functions with three `massa serve --cluster` nodes (n0, n1, n2; 64 partitions,
# lease TTL 2 s), and a one-node cluster of its own (cluster name "solo", node s0) on the same
# etcd and PostgreSQL. The load is shopping-cart AddItem over gRPC (massa-cluster-bench,
# bench/cluster_bench.cc), which picks carts by their owner with PartitionOf and DesiredOwner
# (src/cluster/partition.h) over the member ids, as the nodes do.
#   1. forwarded call overhead: AddItem sent to n0 for carts n0 owns against carts n1 owns
#      (forwarded over the peer link), 1 and 16 in flight, 3 alternating rounds; medians
#   2. throughput, 32 in flight, 3 alternating rounds (medians): 3 nodes with the load spread
#      over their 3 gRPC ports, 3 nodes with each call sent to its cart's owner, and the one-node
#      cluster alone; with the machine's CPU busy share and PostgreSQL write transactions per call
#   3. a planned scale-out: while every cart of 64 gets an add every 50 ms through n0..n2, a
#      4th node n3 starts; the time until the partitions settle (from the admin /metrics), and
#      per cart the longest gap between successful adds (p50/p99/max), then every cart read back
# Results: one JSON record per line in bench/results/cluster-<timestamp>.jsonl.
#
#   bench/cluster.sh                                 # about 2 minutes on 2 cores
#   MASSA_BENCH_SECONDS=2 bench/cluster.sh           # shorter rounds
#   MASSA_BUILD_DIR=build-bench bench/cluster.sh     # binaries from another build directory
#   MASSA_BENCH_LOGS=/tmp/logs bench/cluster.sh      # keep the nodes' logs (info level)
#   MASSA_BENCH_PARTS="1 3" bench/cluster.sh         # only some of the parts below
set -euo pipefail
cd "$(dirname "$0")/.."
build="${MASSA_BUILD_DIR:-build}"
seconds="${MASSA_BENCH_SECONDS:-3}"
partitions=64
./scripts/setup.sh
if [ "$build" = build ]; then
  ./scripts/build.sh massa shopping-cart-function massa-cluster-bench >/dev/null
else
  [ -f "$build/build.ninja" ] ||
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  CCACHE_BASEDIR="$PWD" ninja -C "$build" -j"$(nproc)" massa shopping-cart-function \
    massa-cluster-bench >/dev/null
fi
massa="$build/src/cli/massa"
function_bin="$build/examples/shopping-cart/shopping-cart-function"
bench="$build/bench/massa-cluster-bench"
mkdir -p bench/results
out="$PWD/bench/results/cluster-$(date -u +%Y%m%d-%H%M%S).jsonl"
# shellcheck source=bench/lib.sh
. bench/lib.sh
chmod a+rx "$work"  # PostgreSQL runs as its own user below it
trap 'scripts/postgres-throwaway.sh stop "$work/pg" >/dev/null 2>&1 || true; scripts/etcd-throwaway.sh stop "$work/etcd"; cleanup' EXIT
trap 'exit 130' INT TERM
# The commit, marked when the sources differ from it.
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git status --porcelain -- src include proto examples 2>/dev/null | grep -q . && commit+="+changes"
record "{\"scenario\":\"machine\",\"date\":\"$(date -u +%FT%TZ)\",\"cpus\":$(nproc),\"commit\":\"$commit\",\"seconds_per_round\":$seconds,\"partitions\":$partitions,\"lease_ttl\":\"2s\",\"loadavg_before\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"

awk '$1 > 1.0 {print "note: load average " $1 " before the run: something else is busy; figures will be low"}' /proc/loadavg

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }

etcd=$(scripts/etcd-throwaway.sh start "$work/etcd")
etcd_port=${etcd##*:}
store=$(scripts/postgres-throwaway.sh start "$work/pg")

# Nodes, by id: gRPC address, admin address, log.
declare -A node_grpc node_admin node_log
start_function_of() {  # ID: the node's shopping-cart function
  "$function_bin" --listen "unix:$work/fn-$1.sock" >"$work/fn-$1.log" 2>&1 &
  pids+=($!)
  wait_line "$work/fn-$1.log" "listening on"
}
start_node() {  # ID CLUSTER-NAME [GRPC ADMIN]: massa (and the function unless it runs), on
  # those addresses (else free ports); returns once it serves
  local id=$1 name=$2 grpc=${3:-127.0.0.1:0} admin=${4:-127.0.0.1:0}
  [ -f "$work/fn-$id.log" ] || start_function_of "$id"
  node_log[$id]="$work/massa-$id.log"
  "$massa" serve --function "unix:$work/fn-$id.sock" --store "$store" \
    --cluster "etcd://127.0.0.1:$etcd_port" --cluster-name "$name" --node-id "$id" \
    --partitions "$partitions" --lease-ttl 2s --grpc-listen "$grpc" --http-listen off \
    --admin-listen "$admin" --data-dir "$work/data-$id" --log-level info >"${node_log[$id]}" 2>&1 &
  pids+=($!)
  wait_line "${node_log[$id]}" "admin on"
  node_grpc[$id]=$(grep -o 'serving gRPC on .*' "${node_log[$id]}" | awk '{print $4}')
  node_admin[$id]=$(grep -o 'admin on .*' "${node_log[$id]}" | awk '{print $3}')
}
node_metric() {  # ID NAME: the metric's value on the node ("" when the admin does not answer)
  curl -sf --max-time 1 "http://${node_admin[$1]}/metrics" |
    awk -v name="$2" '$1 == name || index($1, name "{") == 1 {s += $2; f = 1} END {if (f) printf "%.0f", s}'
}
expected_owned() { "$bench" placement --partitions "$partitions" --members "$(IFS=,; echo "$*")"; }
wait_settled() {  # IDS...: until every node sees these members and owns its rendezvous share
  local id admins=""
  for id in "$@"; do admins+="${admins:+,}$id=${node_admin[$id]}"; done
  "$bench" watch --admins "$admins" --partitions "$partitions" --timeout-ms 30000 >"$work/settle.txt" ||
    { echo "the partitions did not settle on $*:" >&2; cat "$work/settle.txt" >&2; return 1; }
}

for id in n0 n1 n2; do start_node "$id" bench; done
start_node s0 solo
wait_settled n0 n1 n2
wait_settled s0
echo "etcd 127.0.0.1:$etcd_port, PostgreSQL $store; nodes n0 ${node_grpc[n0]}, n1 ${node_grpc[n1]}," \
  "n2 ${node_grpc[n2]}; solo s0 ${node_grpc[s0]}"
echo "placement (3 members): $(expected_owned n0 n1 n2 | tr '\n' ' ')"

cpu_busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }  # busy idle
busy_pct() {  # "BUSY IDLE" before: the machine's busy share since then, in %
  local b0 i0 b1 i1
  read -r b0 i0 <<<"$1"
  read -r b1 i1 <<<"$(cpu_busy)"
  echo $(( (b1 - b0) * 100 / ((b1 - b0) + (i1 - i0) > 0 ? (b1 - b0) + (i1 - i0) : 1) ))
}
members="n0,n1,n2"
run_load() {  # SCENARIO [massa-cluster-bench load flags]: one run, its record in $out
  local scenario=$1; shift
  "$bench" load --scenario "$scenario" --json-out "$out" --partitions "$partitions" \
    --members "$members" --duration "$seconds" "$@" >/dev/null
}

part() { [[ " ${MASSA_BENCH_PARTS:-1 2 3} " == *" $1 "* ]]; }

if part 1; then
# Warm-up: activate the carts once.
run_load warm-local --targets "${node_grpc[n0]}" --owner n0 --carts 200 --concurrency 16 --duration 1
run_load warm-forward --targets "${node_grpc[n0]}" --owner n1 --carts 200 --concurrency 16 --duration 1
echo
echo "1. Forwarded call overhead: AddItem to n0, 200 carts owned by n0 (local) or by n1 (forwarded)"
for concurrency in 1 16; do
  lr=() lp=() l9=() fr=() fp=() f9=() fl=() fw=()
  for round in 1 2 3; do
    before=$(node_metric n0 massa_cluster_forwarded_total)
    run_load "local-c$concurrency-r$round" --targets "${node_grpc[n0]}" --owner n0 --carts 200 \
      --concurrency "$concurrency"
    fl+=($(( $(node_metric n0 massa_cluster_forwarded_total) - before )))
    before=$(node_metric n0 massa_cluster_forwarded_total)
    run_load "forward-c$concurrency-r$round" --targets "${node_grpc[n0]}" --owner n1 --carts 200 \
      --concurrency "$concurrency"
    fw+=($(( $(node_metric n0 massa_cluster_forwarded_total) - before )))
    lr+=("$(field "local-c$concurrency-r$round" calls_per_s)")
    lp+=("$(field "local-c$concurrency-r$round" p50_us)")
    l9+=("$(field "local-c$concurrency-r$round" p99_us)")
    fr+=("$(field "forward-c$concurrency-r$round" calls_per_s)")
    fp+=("$(field "forward-c$concurrency-r$round" p50_us)")
    f9+=("$(field "forward-c$concurrency-r$round" p99_us)")
  done
  LR=$(median "${lr[@]}") LP=$(median "${lp[@]}") L9=$(median "${l9[@]}")
  FR=$(median "${fr[@]}") FP=$(median "${fp[@]}") F9=$(median "${f9[@]}")
  echo "  $concurrency in flight: local $LR calls/s p50 $LP us p99 $L9 us; forwarded $FR calls/s" \
    "p50 $FP us p99 $F9 us (+$((FP - LP)) us at p50)"
  echo "    n0's massa_cluster_forwarded_total grew by ${fl[*]} in the local rounds, ${fw[*]} in the forwarded ones"
  record "{\"scenario\":\"forward-overhead-c$concurrency\",\"local_calls_per_s\":$LR,\"local_p50_us\":$LP,\"local_p99_us\":$L9,\"forwarded_calls_per_s\":$FR,\"forwarded_p50_us\":$FP,\"forwarded_p99_us\":$F9,\"added_p50_us\":$((FP - LP)),\"n0_forwarded_local_rounds\":[$(IFS=,; echo "${fl[*]}")],\"n0_forwarded_forwarded_rounds\":[$(IFS=,; echo "${fw[*]}")]}"
done

fi

if part 2; then
run_load warm-spread --targets "${node_grpc[n0]},${node_grpc[n1]},${node_grpc[n2]}" --prefix t \
  --carts 600 --concurrency 32 --duration 1
run_load warm-solo --targets "${node_grpc[s0]}" --prefix u --carts 600 --concurrency 32 --duration 1
echo
echo "2. Throughput, 32 in flight, 600 carts: 3 nodes (calls spread over n0, n1, n2; 2/3 of them" \
  "forwarded), 3 nodes with each call sent to its cart's owner (none forwarded), one node alone (s0)"
# Write transactions in PostgreSQL (the next transaction id, which only writes consume).
pg_xid() { psql "$store" -qAt -c 'SELECT pg_snapshot_xmax(pg_current_snapshot())'; }
declare -A rate p50 busy xact
for round in 1 2 3; do
  for variant in spread routed one; do
    case $variant in
      spread) flags=(--targets "${node_grpc[n0]},${node_grpc[n1]},${node_grpc[n2]}" --prefix t) ;;
      routed) flags=(--targets "${node_grpc[n0]},${node_grpc[n1]},${node_grpc[n2]}" --prefix t --route) ;;
      one) flags=(--targets "${node_grpc[s0]}" --prefix u) ;;
    esac
    cpu=$(cpu_busy)
    xid=$(pg_xid)
    run_load "$variant-r$round" "${flags[@]}" --carts 600 --concurrency 32
    busy[$variant]+=" $(busy_pct "$cpu")"
    xact[$variant]+=" $(awk -v x="$(( $(pg_xid) - xid ))" -v c="$(field "$variant-r$round" calls_total)" \
      'BEGIN {printf "%.2f", x / (c > 0 ? c : 1)}')"
    rate[$variant]+=" $(field "$variant-r$round" calls_per_s)"
    p50[$variant]+=" $(field "$variant-r$round" p50_us)"
  done
done
json=""
for variant in spread routed one; do
  # shellcheck disable=SC2086  # the words are the rounds' values
  R=$(median ${rate[$variant]}) P=$(median ${p50[$variant]}) B=$(median ${busy[$variant]}) X=$(median ${xact[$variant]})
  echo "  $variant: $R calls/s (p50 $P us), CPU ${B}% busy, $X PostgreSQL write transactions per call"
  json+=",\"${variant}_calls_per_s\":$R,\"${variant}_p50_us\":$P,\"${variant}_cpu_busy_pct\":$B,\"${variant}_pg_xacts_per_call\":$X"
done
record "{\"scenario\":\"three-vs-one\"$json}"

fi

if part 3; then
echo
echo "3. Scale-out 3 -> 4 nodes under load: 64 carts, an add to each every 50 ms through n0, n1, n2"
marks="$work/marks"
: >"$marks"
handoffs_before=0
for id in n0 n1 n2; do handoffs_before=$((handoffs_before + $(node_metric "$id" massa_cluster_handoffs_total))); done
"$bench" scaleout --targets "${node_grpc[n0]},${node_grpc[n1]},${node_grpc[n2]}" --prefix m \
  --carts 64 --interval-ms 50 --partitions "$partitions" --members "$members" \
  --members-after n0,n1,n2,n3 --duration 11 --marks "$marks" --scenario scale-out \
  --json-out "$out" >/dev/null 2>"$work/scaleout.txt" &
load_pid=$!
pids+=("$load_pid")
start_function_of n3
n3_grpc="127.0.0.1:$(free_port)"
n3_admin="127.0.0.1:$(free_port)"
sleep 4
# The watcher polls every node's admin (n3's port is fixed in advance) from n3's exec until
# every node owns its rendezvous share, and writes settled_ns into the marks.
start=$(now_ns)
echo "start_ns $start" >>"$marks"
"$bench" watch --admins "n0=${node_admin[n0]},n1=${node_admin[n1]},n2=${node_admin[n2]},n3=$n3_admin" \
  --partitions "$partitions" --start-ns "$start" --marks "$marks" --timeout-ms 7000 \
  --scenario scale-out-timing --json-out "$out" >"$work/timeline.txt" &
watch_pid=$!
pids+=("$watch_pid")
start_node n3 bench "$n3_grpc" "$n3_admin"
watch_rc=0
wait "$watch_pid" || watch_rc=$?
load_rc=0
wait "$load_pid" || load_rc=$?
handoffs=0
for id in n0 n1 n2; do handoffs=$((handoffs + $(node_metric "$id" massa_cluster_handoffs_total))); done
handoffs=$((handoffs - handoffs_before))
timing=$(tail -1 "$work/timeline.txt")
t() { echo "$timing" | grep -o "\"$1\":[0-9a-z]*" | cut -d: -f2; }
echo "  n3 exec'd at 0 ms: its admin answered at $(t admin_up_ms) ms, ready at $(t ready_ms) ms; every node" \
  "saw 4 members at $(t all_see_members_ms) ms; owned partitions summed to $partitions at" \
  "$(t sum_settled_ms) ms; every node owned its rendezvous share (n3: $(t want_new_node)) at" \
  "$(t settled_ms) ms; $handoffs partitions handed off"
[ "$watch_rc" = 0 ] || echo "  NOT SETTLED within 7 s"
echo "  owned/members per node as they changed (ms after n3's exec):"
grep -v '^{' "$work/timeline.txt" || true
sed 's/^/  /' "$work/scaleout.txt"
[ "$load_rc" = 0 ] || echo "  the scale-out load exited with $load_rc (3: a cart lost an acknowledged add or has more than attempted)"
record "{\"scenario\":\"scale-out-counts\",\"handoffs\":$handoffs,\"settled\":$([ "$watch_rc" = 0 ] && echo true || echo false),\"load_exit\":$load_rc}"
fi

echo
echo "Node logs: warnings and errors (digits collapsed)"
for id in $(printf '%s\n' "${!node_log[@]}" | sort); do
  n=$(grep -ciE '\b(warn|warning|error|critical)\b' "${node_log[$id]}" || true)
  echo "  $id: $n lines"
  { grep -iE '\b(warn|warning|error|critical)\b' "${node_log[$id]}" || true; } |
    sed -E 's/^\[[^]]*\] //; s/[0-9]+/#/g' | sort | uniq -c | sort -rn | head -5 | sed 's/^/    /'
done
if [ -n "${MASSA_BENCH_LOGS:-}" ]; then
  mkdir -p "$MASSA_BENCH_LOGS" && cp "$work"/*.log "$work/scaleout.txt" "$work/timeline.txt" "$work/marks" "$MASSA_BENCH_LOGS"/
  echo "logs copied to $MASSA_BENCH_LOGS"
fi
echo "results: $out"
