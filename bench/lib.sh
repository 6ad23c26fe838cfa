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
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
