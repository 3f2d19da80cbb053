#!/bin/sh
# The whole test command: lint, type-check (which also builds), then every tap suite.
# Ends with one plain line "N passed, N failed" (lint and type-check count as one check each).
set -u
out=.tap/report.txt
mkdir -p .tap
passed=0
failed=0
check() {
  name=$1; shift
  if "$@"; then passed=$((passed + 1)); else echo "FAILED: $name" >&2; failed=$((failed + 1)); fi
}
check lint npx --no-install eslint .
check typecheck npm run -s typecheck
# tally FILE: adds the tap summary in FILE to the counts.
tally() {
  summary=$(grep -E '^# \{ total: [0-9]+' "$1" | tail -n 1)
  if [ -z "$summary" ]; then
    echo "FAILED: tap printed no summary ($1)" >&2
    failed=$((failed + 1))
    return
  fi
  pass=$(echo "$summary" | sed -n 's/.*pass: \([0-9]*\).*/\1/p')
  fail=$(echo "$summary" | sed -n 's/.*fail: \([0-9]*\).*/\1/p')
  passed=$((passed + ${pass:-0}))
  failed=$((failed + ${fail:-0}))
}
npx --no-install tap "$@" 2>&1 | tee "$out"
tally "$out"
# The cloud's suite again on PostgreSQL: every test file that starts a cloud or opens a store
# (the rest test code that no store touches). Skipped when tap was given other arguments.
if [ "$#" -eq 0 ]; then
  pg_out=.tap/report-postgres.txt
  files=$(grep -lE 'startTestCloud|testDatabaseUrl' cloud/test/*.test.ts)
  echo "# the cloud suite on PostgreSQL"
  # shellcheck disable=SC2086 # one word per file
  VIGIL_TEST_DATABASE=postgres scripts/with-postgres.sh npx --no-install tap $files 2>&1 | tee "$pg_out"
  tally "$pg_out"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
