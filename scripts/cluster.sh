#!/usr/bin/env bash
# A local cluster on loopback (docs/cluster.md): etcd, a throwaway PostgreSQL, three copies of
# the example shopping-cart function and three `massa serve --cluster` nodes beside them.
# Adds items through one node and reads them through another, shows who owns what, and serves
# until Ctrl-C (then stops everything and removes its directory).
#
#   scripts/cluster.sh                 # nodes n0, n1, n2: gRPC 127.0.0.1:9100-9102,
#                                      # HTTP 8180-8182, admin 9190-9192; etcd 127.0.0.1:2479
#   MASSA_CLUSTER_NODES=5 scripts/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh massa shopping-cart-function >/dev/null

nodes="${MASSA_CLUSTER_NODES:-3}"
etcd_port="${MASSA_ETCD_PORT:-2479}"
massa=build/src/cli/massa
function_bin=build/examples/shopping-cart/shopping-cart-function
work=$(mktemp -d /tmp/massa-cluster.XXXXXX)
chmod a+rx "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/postgres-throwaway.sh stop "$work/pg" || true
  scripts/etcd-throwaway.sh stop "$work/etcd"
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

etcd=$(scripts/etcd-throwaway.sh start "$work/etcd" "$etcd_port" "$((etcd_port + 1))")
store=$(scripts/postgres-throwaway.sh start "$work/pg")
echo "etcd on 127.0.0.1:$etcd_port, PostgreSQL at $store"

for i in $(seq 0 $((nodes - 1))); do
  "$function_bin" --listen "unix:$work/fn$i.sock" >"$work/fn$i.log" 2>&1 &
  pids+=($!)
  "$massa" serve --function "unix:$work/fn$i.sock" --store "$store" \
    --cluster "etcd://127.0.0.1:$etcd_port" --node-id "n$i" \
    --grpc-listen "127.0.0.1:$((9100 + i))" --http-listen "127.0.0.1:$((8180 + i))" \
    --admin-listen "127.0.0.1:$((9190 + i))" --log-level info >"$work/massa$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 0 $((nodes - 1))); do
  for _ in $(seq 300); do curl -sf "127.0.0.1:$((9190 + i))/readyz" >/dev/null && break; sleep 0.1; done
done
sleep 1  # the partitions settle (claims)

owned() { curl -s "127.0.0.1:$((9190 + $1))/metrics" | awk '$1 == "massa_cluster_partitions_owned" {print $2}'; }
echo
for i in $(seq 0 $((nodes - 1))); do echo "node n$i owns $(owned "$i") partitions"; done
call() { echo "\$ massa call --address $1 $2 '$3'"; "$massa" call --address "$1" "$2" "$3"; }
call 127.0.0.1:9100 example.shoppingcart.ShoppingCart/AddItem '{"cart_id":"demo","product_id":"pen","name":"Pen","quantity":2}'
call "127.0.0.1:$((9100 + nodes - 1))" example.shoppingcart.ShoppingCart/GetCart '{"cart_id":"demo"}'
echo
echo "Any node takes any command: gRPC 127.0.0.1:9100..$((9100 + nodes - 1)), HTTP 127.0.0.1:8180..$((8180 + nodes - 1))."
echo "Kill one (kill -9 of a massa) and watch its partitions move: curl 127.0.0.1:9190/v1/cluster"
echo "Logs in $work. Ctrl-C stops everything."
wait "${pids[1]}"
