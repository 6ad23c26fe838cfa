#!/usr/bin/env bash
# Installs, builds and starts the example shopping cart: the C++ function on a Unix socket and
# `massa serve` beside it on 127.0.0.1:9000, state in ./massa-data (RocksDB). Runs a short
# scripted session, prints how to call it, and serves until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh massa shopping-cart-function

port="${MASSA_PORT:-9000}"
http_port="${MASSA_HTTP_PORT:-8080}"
admin_port="${MASSA_ADMIN_PORT:-9090}"
socket="/tmp/massa-example-$$.sock"
massa=build/src/cli/massa
function_bin=build/examples/shopping-cart/shopping-cart-function
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$socket"
}
trap cleanup EXIT INT TERM

"$function_bin" --listen "unix:$socket" &
pids+=($!)
"$massa" serve --function "unix:$socket" --grpc-listen "127.0.0.1:$port" \
  --http-listen "127.0.0.1:$http_port" --admin-listen "127.0.0.1:$admin_port" \
  --data-dir massa-data --log-level info &
pids+=($!)

for _ in $(seq 100); do
  "$massa" services --address "127.0.0.1:$port" >/dev/null 2>&1 && break
  sleep 0.1
done

call() { echo "\$ massa call $1 '$2'"; "$massa" call --address "127.0.0.1:$port" "$1" "$2"; }
echo
echo "== Massa is serving the shopping cart on 127.0.0.1:$port =="
"$massa" services --address "127.0.0.1:$port"
echo
call example.shoppingcart.ShoppingCart/AddItem '{"cart_id":"demo","product_id":"pen","name":"Pen","quantity":2}'
call example.shoppingcart.CartFront/AddItems '{"cart_id":"demo","items":[{"product_id":"ink","name":"Ink","quantity":1}]}'
call example.shoppingcart.ShoppingCart/GetCart '{"cart_id":"demo"}'
echo
echo "Call it yourself from another terminal, for example:"
echo "  $massa call --address 127.0.0.1:$port example.shoppingcart.ShoppingCart/GetCart '{\"cart_id\":\"demo\"}'"
echo "or with any gRPC client at 127.0.0.1:$port (server reflection is on), or over HTTP/JSON:"
echo "  curl 127.0.0.1:$http_port/carts/demo"
echo "  curl -H 'content-type: application/json' -d '{\"productId\":\"cup\",\"quantity\":1}' 127.0.0.1:$http_port/carts/demo/items"
echo "Metrics: curl 127.0.0.1:$admin_port/metrics   Readiness: curl 127.0.0.1:$admin_port/readyz"
echo "State is kept in ./massa-data. Ctrl-C stops."
wait "${pids[1]}"
