#!/usr/bin/env bash
# A slow spell during a budgeted run's warm-up only: two busy loops share the CPU from the start of the run until
# its plan line, so the warm-up prices a training step high and training then runs at the quiet pace, as it did on
# the Debian manuals (priced 28 s a step, trained at 13-16 s). The train line should then say "steps ran faster
# than planned, and the time budget held more".
#
#     bash bench/slow_warmup.sh DOCS OUT BUDGET      e.g. bash bench/slow_warmup.sh /tmp/nist /tmp/slow 6m
set -uo pipefail
docs=$1 out=$2 budget=$3
python=${PYTHON:-python}
rm -rf "$out"
"$python" -m ragtune run "$docs" --out "$out" --time-budget "$budget" >"$out.log" 2>&1 &
run=$!
hogs=()
for _ in 1 2; do (while :; do :; done) & hogs+=($!); done
until grep -q "^plan:" "$out.log" 2>/dev/null || ! kill -0 "$run" 2>/dev/null; do sleep 1; done
kill "${hogs[@]}"
echo "busy loops stopped at $(date +%T)"
wait "$run"
status=$?
grep -a "^plan:\|\] train  .*steps on" "$out.log"
exit $status
