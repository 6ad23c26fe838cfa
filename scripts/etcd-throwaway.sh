#!/usr/bin/env bash
# Starts or stops a throwaway one-member etcd (Debian's etcd-server) on 127.0.0.1 for
# benchmarks and local clusters (the tests start their own from C++: test/fakes/etcd_server.h).
#
#   scripts/etcd-throwaway.sh start DIR [CLIENT_PORT [PEER_PORT]]   # prints host:port
#   scripts/etcd-throwaway.sh stop DIR
#
# Data, log (DIR/etcd.log) and pid (DIR/etcd.pid) live in DIR. Ports default to free ones.
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?directory}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case "$cmd" in
  start)
    client=${3:-$(free_port)}
    peer=${4:-$(free_port)}
    mkdir -p "$dir"
    setsid /usr/bin/etcd --name throwaway --data-dir "$dir/data" \
      --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
      --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
      --initial-cluster "throwaway=http://127.0.0.1:$peer" >"$dir/etcd.log" 2>&1 </dev/null &
    echo $! >"$dir/etcd.pid"
    for _ in $(seq 100); do
      if curl -sf "http://127.0.0.1:$client/health" | grep -q true; then
        echo "127.0.0.1:$client"
        exit 0
      fi
      sleep 0.1
    done
    echo "etcd did not answer on 127.0.0.1:$client within 10 s; its log: $dir/etcd.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/etcd.pid" ]; then
      kill "$(cat "$dir/etcd.pid")" 2>/dev/null || true
      rm -f "$dir/etcd.pid"
    fi
    ;;
  *) echo "usage: $0 start|stop DIR [CLIENT_PORT [PEER_PORT]]" >&2; exit 2 ;;
esac
