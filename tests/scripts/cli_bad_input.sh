#!/usr/bin/env bash
# Bad input through the real nfcal binary: every case must end with status 1 (2 for usage
# errors), one "nfcal: error:" line naming the culprit, no crash, and no file or folder left
# behind. Usage: cli_bad_input.sh SOURCE_DIR BINARY_DIR NFCAL
set -euo pipefail

nfcal="$3"
work="$(mktemp -d "${TMPDIR:-/tmp}/nfcal-bad-input.XXXXXX")"
trap 'chmod -R u+rwx "$work"; rm -rf "$work"' EXIT
cd "$work"
failures=0

fail() { printf 'cli_bad_input: FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }

# expect STATUS "PART1|PART2|..." ARGS...: runs nfcal, checks the status, that stderr carries
# exactly one error line holding every part, and that the folder's listing did not change.
expect() {
  local status="$1" parts="$2"
  shift 2
  local before after got
  before="$(ls -A | sort)"
  set +e
  "$nfcal" "$@" >out.log 2>err.log
  got=$?
  set -e
  after="$(ls -A | grep -v -x -e out.log -e err.log | sort)"
  before="$(grep -v -x -e out.log -e err.log <<<"$before" || true)"
  local what="nfcal $*"
  [[ "$got" == "$status" ]] || fail "$what: status $got, expected $status: $(cat err.log)"
  [[ "$(grep -c '^nfcal: error: ' err.log)" == 1 ]] ||
    fail "$what: not one error line: $(cat err.log)"
  local part
  IFS='|' read -r -a part_list <<<"$parts"
  for part in "${part_list[@]}"; do
    grep -qF -- "$part" err.log || fail "$what: '$part' missing from: $(cat err.log)"
  done
  [[ "$before" == "$after" ]] ||
    fail "$what: left files behind: $(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')"
}

# Inputs: good rows as CSV and .npy, and a tiny flow and calibrated model made from them.
awk 'BEGIN { print "a,b";
            for (i = 0; i < 200; i++) printf "%.4f,%.4f\n", sin(i), cos(i) * 0.5 + i / 400 }' \
  >rows.csv
quick=(--epochs 1 --layers 1 --hidden 4 --threads 1 --quiet)
"$nfcal" fit --data rows.csv --out flow.nfcal "${quick[@]}" >/dev/null
"$nfcal" sample --model flow.nfcal --count 50 --out rows.npy --quiet >/dev/null
"$nfcal" calibrate --flow flow.nfcal --data rows.csv --out model.nfcal --trees 3 \
  --log-z-samples 500 --threads 1 --quiet >/dev/null

# Files that are missing, unreadable, of the wrong type, or cut short.
expect 1 "absent.csv|No such file" run --data absent.csv --out result "${quick[@]}"
expect 1 "rows.txt|use .npy or .csv" run --data rows.txt --out result "${quick[@]}"
head -c 100 rows.npy >cut.npy
expect 1 "cut.npy" run --data cut.npy --out result "${quick[@]}"
if ((EUID != 0)); then
  cp rows.csv locked.csv && chmod 000 locked.csv
  expect 1 "locked.csv" run --data locked.csv --out result "${quick[@]}"
fi
head -c -10 rows.npy >short.npy  # a whole header, the last rows cut off
expect 1 "short.npy|truncated" run --data short.npy --out result "${quick[@]}"
# A well-formed .npy of shape (0, 2): the header, padded to 128 bytes, and no data.
{
  printf '\x93NUMPY\x01\x00\x76\x00'
  printf "%-117s\n" "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 2), }"
} >zero.npy
expect 1 "zero.npy|no rows" fit --data zero.npy --out zero.nfcal "${quick[@]}"

# CSV contents: a ragged row, a word, NaN and Inf (row and column named), no rows, one row.
printf 'a,b\n1,2\n3\n4,5\n' >ragged.csv
expect 1 "ragged.csv:3" run --data ragged.csv --out result "${quick[@]}"
printf 'a,b\n1,2\n3,abc\n' >word.csv
expect 1 "word.csv:3:2|abc" run --data word.csv --out result "${quick[@]}"
{ head -n 20 rows.csv; echo "0.5,nan"; tail -n +21 rows.csv; } >nan.csv
expect 1 "nan.csv|row 19|column 1|NaN" run --data nan.csv --out result "${quick[@]}"
{ head -n 5 rows.csv; echo "inf,0.5"; tail -n +6 rows.csv; } >inf.csv
expect 1 "inf.csv|row 4|column 0" run --data inf.csv --out result "${quick[@]}"
printf 'a,b\n' >empty.csv
expect 1 "empty.csv|no rows" run --data empty.csv --out result "${quick[@]}"
printf 'a,b\n1,2\n' >one.csv
expect 1 "one.csv|1 rows" run --data one.csv --out result "${quick[@]}"
expect 1 "one.csv|at least 10" run --data one.csv --test rows.csv --out result "${quick[@]}"
expect 1 "--test-fraction 0.999|1 training rows" run --data rows.csv --test-fraction 0.999 \
  --out result "${quick[@]}"
expect 1 "one.csv|1 row of training data|at least 4" fit --data one.csv --out one.nfcal
expect 1 "one.csv|1 row of calibration data" calibrate --flow flow.nfcal --data one.csv \
  --out one.nfcal

# A constant column is no error, but the warning names it and its value.
awk 'BEGIN { for (i = 0; i < 50; i++) printf "%.4f,3\n", sin(i) }' >constant.csv
"$nfcal" fit --data constant.csv --out constant.nfcal --epochs 1 --layers 1 --hidden 4 \
  --threads 1 >/dev/null 2>err.log
grep -qF "constant.csv: column 1 (3) holds the same value in every row" err.log ||
  fail "fit: the constant column was not named: $(cat err.log)"

# Rows far outside the data score -inf, with a warning that names the first of them.
printf 'a,b\n0.1,0.2\n1e38,1e38\n' >far.csv
"$nfcal" score --model flow.nfcal --data far.csv --out far.npy >far.log 2>err.log ||
  fail "score: rows far outside the data failed: $(cat err.log)"
grep -qF "1 of 2 rows (the first is row 1)" err.log ||
  fail "score: the -inf row was not named: $(cat err.log)"
grep -qF "mean_log_likelihood=-inf standard_error=inf" far.log ||
  fail "score: the summary of -inf rows is not -inf +- inf: $(cat far.log)"

# Shapes and models that do not fit together.
printf 'a,b,c\n1,2,3\n4,5,6\n' >three.csv
expect 1 "three.csv|3 columns" run --data rows.csv --test three.csv --out result "${quick[@]}"
expect 1 "three.csv|3 columns|model has 2" score --model flow.nfcal --data three.csv --out s.npy
expect 1 "model.nfcal" calibrate --flow model.nfcal --data rows.csv --out again.nfcal
{ head -c 8 flow.nfcal; printf '\x63\x00\x00\x00'; tail -c +13 flow.nfcal; } >v99.nfcal
expect 1 "v99.nfcal|version" score --model v99.nfcal --data rows.csv --out s.npy
expect 1 "rows.csv|not an nfcal model file" score --model rows.csv --data rows.csv --out s.npy

# Output paths that cannot be written.
printf 'x' >blocked
expect 1 "blocked" run --data rows.csv --out blocked "${quick[@]}"
expect 1 "blocked" run --data rows.csv --out blocked/inside "${quick[@]}"
expect 1 "missing/s.npy|does not exist" sample --model flow.nfcal --count 5 --out missing/s.npy

# A run that fails midway (training diverges) removes the folder it made.
expect 1 "diverged" run --data rows.csv --out result --learning-rate 1e30 --epochs 2 \
  --threads 1 --quiet
if ((EUID != 0)); then
  mkdir readonly && chmod 555 readonly
  expect 1 "readonly/s.npy|Permission denied" sample --model flow.nfcal --count 5 \
    --out readonly/s.npy
else
  echo "cli_bad_input: the read-only folder case needs a user other than root; skipped"
fi

# Counts beyond any machine's memory or threads: refused at once, before any long work.
expect 1 "--count: 100000000000000 rows|GiB" sample --model model.nfcal --count 100000000000000 \
  --out s.npy
expect 1 "--samples: 100000000000000 rows|GiB" run --data rows.csv --out result \
  --samples 100000000000000 "${quick[@]}"
expect 1 "--train-size plus --test-size|GiB" run --dataset two-moons --out result \
  --train-size 100000000000000 "${quick[@]}"
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "%.4f,%.4f\n", sin(i), cos(i) }' >many.csv
expect 1 "--flow-ratio 1e+06 with 100000 data rows|GiB" calibrate --flow flow.nfcal \
  --data many.csv --out big.nfcal --flow-ratio 1e6
expect 1 "flow_ratio|at most 1e+06" calibrate --flow flow.nfcal --data rows.csv --out big.nfcal \
  --flow-ratio 1e300

# A run ended by a signal removes the folder it made and ends with the signal's status.
"$nfcal" run --dataset mixture-8d --out stopped --threads 1 --quiet >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -d stopped ]] && break; sleep 0.1; done
sleep 0.5
kill -TERM "$pid"
set +e
wait "$pid"
status=$?
set -e
[[ "$status" == 143 ]] || fail "run ended by SIGTERM: status $status, expected 143"
[[ ! -e stopped ]] || fail "run ended by SIGTERM: its folder was left behind"

# Usage errors: status 2 and a pointer to the help.
expect 2 "nfcal run --help" run --out result
expect 2 "nfcal run --help" run --data rows.csv --dataset two-moons --out result
expect 2 "--threads|4096|nfcal sample --help" sample --model flow.nfcal --count 5 --out s.npy \
  --threads 100000

((failures == 0)) || { printf 'cli_bad_input: %d failures\n' "$failures" >&2; exit 1; }
printf 'cli_bad_input: all cases passed\n'
