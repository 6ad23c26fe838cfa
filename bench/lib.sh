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
