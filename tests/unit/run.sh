#!/usr/bin/env bash
# Runs every cmocka test binary given and prints one closing line that CI reads:
#   unit: N passed, N failed
set -u
pass=0 fail=0
for t in "$@"; do
    out=$("$t" 2>&1); rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    pass=$((pass + ${p:-0}))
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out"
        fail=$((fail + ${f:-1}))
    fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
