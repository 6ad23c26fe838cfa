# Shared by bench/run.sh and bench/compare.sh (sourced): a scratch directory and the processes
# started in it, removed and stopped on exit.
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# record JSON: appends one result record to $out; rss_kb PID: a process's resident memory.
record() { echo "$1" >>"$out"; }
field() {  # SCENARIO FIELD: a field of the scenario's last record in $out
  grep "\"scenario\":\"$1\"" "$out" | tail -1 | grep -o "\"$2\":[0-9.]*" | cut -d: -f2
}
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }  # of three values
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# For scripts that start massa and functions themselves; they set $massa, $loadgen and $out.
wait_line() {  # FILE TEXT
  for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}
# start_function NAME BINARY [env...]: sets fn_sock.
start_function() {
  local name=$1 binary=$2; shift 2
  fn_sock="unix:$work/$name.sock"
  env "$@" "$binary" --listen "$fn_sock" >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_line "$work/$name.log" "listening on"
}
# start_massa NAME [flags]: on data dir $work/data-NAME; sets massa_pid, massa_addr, admin.
start_massa() {
  local name=$1; shift
  local log="$work/massa-$name-$RANDOM.log"
  "$massa" serve --function "$fn_sock" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --admin-listen 127.0.0.1:0 --data-dir "$work/data-$name" --log-level warn "$@" >"$log" 2>&1 &
  massa_pid=$!
  pids+=($massa_pid)
  wait_line "$log" "admin on"
  massa_addr=$(grep -o 'serving gRPC on .*' "$log" | awk '{print $4}')
  admin=$(grep -o 'admin on .*' "$log" | awk '{print $3}')
}
stop_massa() { kill "$massa_pid"; wait "$massa_pid" 2>/dev/null || true; }
metric() {  # NAME: its value (summed over labels) from /metrics
  curl -sf "http://$admin/metrics" | awk -v name="$1" '$1 == name || index($1, name "{") == 1 {s += $2} END {printf "%.0f", s}'
}
load() {  # SCENARIO [loadgen flags]: prints calls/s
  local scenario=$1; shift
  "$loadgen" --target "$massa_addr" --scenario "$scenario" --json-out "$out" \
    --watch-pid "$massa_pid" "$@" | tee -a "$work/loadgen.txt" |
    awk '$1 == "'"$scenario"'" {print $2}'
}
