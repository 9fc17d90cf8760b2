#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS (default 60) each, two at a time, on the corpora kept in
# fuzz/corpus, and prints the executions per target and in total. A crash stops with its artifact path.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v scepkit-fuzz)
mkdir -p fuzz/logs
cargo +nightly fuzz build -O >/dev/null
run() {
  cargo +nightly fuzz run -O "$1" "fuzz/corpus/$1" -- -max_total_time="$SECS" -print_final_stats=1 -rss_limit_mb=4096 > "fuzz/logs/$1.log" 2>&1
}
export -f run; export SECS
if ! printf '%s\n' $targets | xargs -P "$JOBS" -I{} bash -c 'run {}'; then
  grep -l "ERROR: libFuzzer\|panicked" fuzz/logs/*.log | while read -r f; do echo "CRASH in $f:"; grep -A3 "Test unit written" "$f" || tail -20 "$f"; done
  exit 1
fi
total=0
for t in $targets; do
  n=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/logs/$t.log" | tail -1)
  printf '%-14s %12s executions in %ss\n' "$t" "$n" "$SECS"
  total=$((total + n))
done
printf '%-14s %12s executions\n' total "$total"
