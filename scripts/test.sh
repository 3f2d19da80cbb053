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
npx --no-install tap "$@" 2>&1 | tee "$out"
summary=$(grep -E '^# \{ total: [0-9]+' "$out" | tail -n 1)
if [ -z "$summary" ]; then
  echo "FAILED: tap printed no summary" >&2
  failed=$((failed + 1))
else
  pass=$(echo "$summary" | sed -n 's/.*pass: \([0-9]*\).*/\1/p')
  fail=$(echo "$summary" | sed -n 's/.*fail: \([0-9]*\).*/\1/p')
  passed=$((passed + ${pass:-0}))
  failed=$((failed + ${fail:-0}))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
