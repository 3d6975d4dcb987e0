#!/usr/bin/env bash
# A short fuzzing run for CI: fuzz/fuzz_buffer.py for each role, FUZZ_SECONDS per role
# (default 30, split evenly between replay and live mode), starting from a temporary
# copy of the committed corpus (the tree is never written). Exits non-zero on any
# finding and keeps the temporary directory with the crashing input; prints the
# executions and exec/s of every run.
#
#   fuzz/run_ci.sh                    # about one minute
#   FUZZ_SECONDS=300 fuzz/run_ci.sh   # longer
#
# Needs atheris (Linux x86-64 wheels for CPython 3.11-3.13): pip install 'atheris==3.0.0'
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
PER_ROLE=${FUZZ_SECONDS:-30}
RSS_MB=${FUZZ_RSS_MB:-2048}

if ! "$PYTHON" -c 'import atheris' 2>/dev/null; then
  echo "fuzz/run_ci.sh: atheris is not installed for $PYTHON: pip install 'atheris==3.0.0'" >&2
  exit 2
fi
if [ -n "${FUZZ_IGNORE:-}" ]; then
  echo "fuzz/run_ci.sh: FUZZ_IGNORE is set; CI must see every finding" >&2
  exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/unitls-fuzz.XXXXXX")
failed=0
grand=0
for role in server client; do
  role_execs=0
  for mode in replay live; do
    seconds=$(( (PER_ROLE + 1) / 2 ))
    dir="$WORK/$role-$mode"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp fuzz/corpus/"$role"/* "$dir/corpus/"
    rc=0
    "$PYTHON" fuzz/fuzz_buffer.py --role "$role" --mode "$mode" "$dir/corpus" \
      -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb="$RSS_MB" \
      -timeout=2 -max_len=8192 -artifact_prefix="$dir/artifacts/" >"$dir/log" 2>&1 || rc=$?
    execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$dir/log")
    rate=$(awk '/^stat::average_exec_per_sec:/ {print $2}' "$dir/log")
    execs=${execs:-0}
    role_execs=$(( role_execs + execs ))
    line=$(printf '%-6s %-6s %9s executions %6s exec/s' "$role" "$mode" "$execs" "${rate:-?}")
    echo "$line"
    if [ "$rc" -ne 0 ]; then
      failed=1
      echo "FINDING: $role $mode (libFuzzer exit $rc); log: $dir/log" >&2
      grep -v -e '^INFO: Instrumenting' -e '^#' "$dir/log" | tail -n 40 >&2
      for artifact in "$dir"/artifacts/*; do
        [ -e "$artifact" ] || continue
        echo "reproduce: $PYTHON fuzz/fuzz_buffer.py --role $role --run $artifact" >&2
      done
    fi
  done
  echo "$role total: $role_execs executions in ${PER_ROLE}s"
  grand=$(( grand + role_execs ))
done
echo "all roles: $grand executions"

if [ "$failed" -ne 0 ]; then
  echo "fuzz/run_ci.sh: findings above; inputs and logs kept in $WORK" >&2
  exit 1
fi
rm -rf "$WORK"
