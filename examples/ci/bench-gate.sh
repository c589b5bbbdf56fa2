#!/usr/bin/env bash
# The CI gate: run the seed scenario on the embedded broker (nothing to
# install), compare it with the committed baseline, and leave a JUnit report,
# the result and an HTML report for the CI system to keep.
#
#   examples/ci/bench-gate.sh                 # from the repository root
#   WARREN=target/release/warren DURATION=10s REPEAT=3 examples/ci/bench-gate.sh
#
# Exit codes are warren's: 0 passed, 3 a regression or a missed gate, 1 an error.
# Refresh the baseline on the CI machine kind after an intended change:
#   warren bench scenarios/seed.yaml --duration 10s --repeat 3 --save-baseline examples/ci/baseline-seed.json
set -uo pipefail

WARREN=${WARREN:-warren}
DURATION=${DURATION:-10s}
REPEAT=${REPEAT:-3}
OUT=${OUT:-bench-out}
BASELINE=${BASELINE:-examples/ci/baseline-seed.json}
mkdir -p "$OUT"
# The same tolerances judge the run and annotate the HTML report.
TOLERANCE=(--max-throughput-drop 10% --max-latency-rise 50% --min-latency-rise 2ms)

"$WARREN" bench scenarios/seed.yaml --broker embedded \
    --duration "$DURATION" --warmup 2s --repeat "$REPEAT" \
    --baseline "$BASELINE" "${TOLERANCE[@]}" \
    --junit "$OUT/junit.xml" --out "$OUT/result.json"
status=$?

# The report is written whatever the verdict, so a failed gate can be looked at.
if [ -f "$OUT/result.json" ]; then
    "$WARREN" report "$OUT/result.json" --baseline "$BASELINE" "${TOLERANCE[@]}" --html "$OUT/report.html" || status=1
fi
exit $status
