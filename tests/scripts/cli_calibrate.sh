#!/usr/bin/env bash
# The calibration commands through the real nfcal binary: fit, calibrate (every ceiling mode,
# and its report as JSON), evaluate (table and JSON with exactly the documented keys, and the
# share of the gap closed against a known truth), info, and sample and score on the
# calibrated bundle, with equal seeds giving equal files.
# Usage: cli_calibrate.sh SOURCE BINARY NFCAL
set -euo pipefail

nfcal="$3"
work="$(mktemp -d "${TMPDIR:-/tmp}/nfcal-calibrate.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
failures=0

fail() { printf 'cli_calibrate: FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
mentions() { grep -qF -- "$2" "$1" || fail "$1 does not mention '$2': $(cat "$1")"; }

# Training rows: two separated clusters, and a small flow trained briefly on them.
awk 'BEGIN { srand(3); print "a,b";
  for (i = 0; i < 1500; i++) { c = (i % 2) ? 2.5 : -2.5;
    printf "%.5f,%.5f\n", c + 0.4 * (rand() + rand() + rand() - 1.5),
           0.4 * (rand() + rand() - 1) } }' \
  >train.csv
quick=(--threads 1 --quiet)
"$nfcal" fit --data train.csv --out flow.nfcal --epochs 3 --layers 2 --hidden 16 "${quick[@]}" \
  >/dev/null

# calibrate: every ceiling mode writes a model and a summary.
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out model.nfcal --trees 60 \
  --max-depth 4 --log-z-samples 20000 "${quick[@]}" >auto.out
mentions auto.out "held-out log-likelihood"
mentions auto.out "wrote model.nfcal"
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out fixed.nfcal --trees 30 \
  --ceiling 0.5 --log-z-samples 5000 --json fixed.json "${quick[@]}" >fixed.out
mentions fixed.out "ceiling 0.5"
mentions fixed.out "wrote fixed.json"
mentions fixed.json '"ceiling": 0.5'
mentions fixed.json '"heldout_data_rows": 300'
mentions fixed.json '"log_z_samples": 5000'

# --json - puts the JSON alone on stdout and the summary on stderr.
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out piped.nfcal --trees 30 \
  --ceiling none --log-z-samples 5000 --json - "${quick[@]}" >piped.json 2>piped.err
mentions piped.json '"ceiling": null'
mentions piped.json '"exact_sampling": false'
mentions piped.err "approximate"
[[ "$(head -c 1 piped.json)" == "{" ]] ||
  fail "calibrate --json - wrote more than JSON: $(head -n 3 piped.json)"
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out none.nfcal --trees 30 \
  --ceiling none --log-z-samples 5000 "${quick[@]}" >none.out
mentions none.out "approximate"
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out target.nfcal --trees 30 \
  --target-acceptance 0.4 --log-z-samples 5000 "${quick[@]}" >target.out
mentions target.out "predicted acceptance 0.4000"

# The classifier's knobs: more flow rows per data row, another learning rate, a seed and the
# CPU named. The same seed gives the same model file; another seed another one.
tuned=(--trees 30 --learning-rate 0.2 --flow-ratio 2 --device cpu --log-z-samples 5000)
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out tuned.nfcal "${tuned[@]}" \
  --seed 7 --json tuned.json "${quick[@]}" >/dev/null
mentions tuned.json '"train_flow_rows": 2400'
mentions tuned.json '"heldout_flow_rows": 600'
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out tuned_again.nfcal "${tuned[@]}" \
  --seed 7 "${quick[@]}" >/dev/null
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out tuned_other.nfcal "${tuned[@]}" \
  --seed 8 "${quick[@]}" >/dev/null
cmp -s tuned.nfcal tuned_again.nfcal || fail "the same --seed gave different model files"
cmp -s tuned.nfcal tuned_other.nfcal && fail "--seed 7 and --seed 8 gave the same model file"
grep -qaF '"learning_rate":0.2' tuned.nfcal ||
  fail "the model's metadata does not record --learning-rate 0.2"

# A damaged calibrated bundle is refused by every command that reads it, naming the file.
cp tuned.nfcal damaged.nfcal
size="$(wc -c <damaged.nfcal)"
printf '\x00\x00\x00\x00' | dd of=damaged.nfcal bs=1 seek=$((size - 64)) conv=notrunc \
  status=none
for command in "sample --model damaged.nfcal --count 5 --out d.npy" \
  "score --model damaged.nfcal --data train.csv --out d.npy" \
  "evaluate --model damaged.nfcal --data train.csv"; do
  # shellcheck disable=SC2086
  if "$nfcal" $command "${quick[@]}" >/dev/null 2>damaged.err; then
    fail "nfcal $command accepted a damaged bundle"
  fi
  mentions damaged.err "damaged.nfcal"
done
[[ ! -e d.npy ]] || fail "a damaged bundle still produced d.npy"

# info: the parts of a bundle and its metadata, as text and as JSON; a damaged file fails.
"$nfcal" info --model tuned.nfcal "${quick[@]}" >info.out
mentions info.out "calibrated model"
mentions info.out "flow: 2 dimensions, 2 MADE layers"
mentions info.out "classifier: xgboost"
mentions info.out "exact sampling"
mentions info.out "data_rows: 1500"
mentions info.out "classifier_params.learning_rate: 0.2"
"$nfcal" info --model flow.nfcal --json - "${quick[@]}" >info.json 2>/dev/null
[[ "$(head -c 1 info.json)" == "{" ]] || fail "info --json - wrote more than JSON"
mentions info.json '"kind": "flow"'
grep -qF '"tensors"' info.json && fail "info --json printed the tensor table"
if "$nfcal" info --model damaged.nfcal "${quick[@]}" >/dev/null 2>damaged.err; then
  fail "nfcal info accepted a damaged bundle"
fi
mentions damaged.err "damaged.nfcal"

# --validation: given rows choose the trees and the ceiling; every --data row trains. It
# excludes --validation-fraction, and rows of another width are refused by name.
head -n 1201 train.csv >first.csv
{ head -n 1 train.csv; tail -n 300 train.csv; } >last.csv
"$nfcal" calibrate --flow flow.nfcal --data first.csv --validation last.csv --out held.nfcal \
  --trees 30 --log-z-samples 5000 --json held.json "${quick[@]}" >held.out
mentions held.json '"heldout_data_rows": 300'
mentions held.json '"train_data_rows": 1200'
set +e
"$nfcal" calibrate --flow flow.nfcal --data first.csv --validation last.csv \
  --validation-fraction 0.3 --out both_splits.nfcal "${quick[@]}" >/dev/null 2>both_splits.err
status=$?
set -e
[[ "$status" == 2 ]] || fail "--validation with --validation-fraction: status $status, expected 2"
awk -F, 'BEGIN { OFS = "," } { print $1, $2, $2 }' last.csv >wide.csv
if "$nfcal" calibrate --flow flow.nfcal --data first.csv --validation wide.csv \
  --out wide.nfcal "${quick[@]}" >/dev/null 2>wide.err; then
  fail "validation rows of three columns were accepted"
fi
mentions wide.err "wide.csv: 3 columns"

# The classifier input: latent by default, the data alone on request, anything else refused.
mentions auto.out "XGBoost on data+latent"
mentions auto.out "refit on all rows"
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out plain.nfcal --trees 30 \
  --classifier-input data --no-refit --log-z-samples 5000 "${quick[@]}" >plain.out
mentions plain.out "XGBoost on data,"
grep -qF "refit" plain.out && fail "--no-refit still refit: $(cat plain.out)"
"$nfcal" score --model plain.nfcal --data train.csv --out plain.npy "${quick[@]}" >/dev/null
set +e
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out bad.nfcal \
  --classifier-input pixels "${quick[@]}" >/dev/null 2>input.err
status=$?
set -e
[[ "$status" == 2 ]] || fail "--classifier-input pixels: status $status, expected 2"
mentions input.err "pixels"
[[ ! -e bad.nfcal ]] || fail "a bad --classifier-input left bad.nfcal behind"

# A boosted forest: several averaged trees per round, which need a row or column subsample.
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out forest.nfcal --trees 30 \
  --parallel-trees 3 --subsample 0.7 --log-z-samples 5000 "${quick[@]}" >forest.out
mentions forest.out "rounds of 3 averaged trees"
"$nfcal" score --model forest.nfcal --data train.csv --out forest.npy "${quick[@]}" >/dev/null
set +e
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out same.nfcal --trees 30 \
  --parallel-trees 3 "${quick[@]}" >/dev/null 2>forest.err
status=$?
set -e
[[ "$status" != 0 ]] || fail "--parallel-trees 3 without a subsample was accepted"
mentions forest.err "parallel_trees"
[[ ! -e same.nfcal ]] || fail "a refused --parallel-trees left same.nfcal behind"

# --ceiling and --target-acceptance exclude each other: a usage error.
set +e
"$nfcal" calibrate --flow flow.nfcal --data train.csv --out both.nfcal --ceiling 1 \
  --target-acceptance 0.5 "${quick[@]}" >/dev/null 2>both.err
status=$?
set -e
[[ "$status" == 2 ]] || fail "--ceiling with --target-acceptance: status $status, expected 2"
[[ ! -e both.nfcal ]] || fail "a usage error left both.nfcal behind"
set +e
"$nfcal" calibrate --flow missing.nfcal --data train.csv --out word.nfcal --ceiling high \
  "${quick[@]}" >/dev/null 2>word.err
status=$?
set -e
[[ "$status" == 2 ]] || fail "--ceiling high: status $status, expected a usage error (2)"
mentions word.err "--ceiling"

# evaluate: a table on stdout, and JSON with exactly the documented keys.
"$nfcal" evaluate --model model.nfcal --data train.csv --acceptance-samples 2000 \
  "${quick[@]}" >table.out
mentions table.out "calibrated log-likelihood"
mentions table.out "acceptance measured"
"$nfcal" evaluate --model model.nfcal --data train.csv --acceptance-samples 2000 \
  --json metrics.json "${quick[@]}" >/dev/null
"$nfcal" evaluate --model flow.nfcal --data train.csv --json - "${quick[@]}" >flow.json \
  2>/dev/null
keys="$(tr -d ' \n' <metrics.json | grep -o '"[a-z_]*":' | tr -d '":' | sort | tr '\n' ' ')"
expected="acceptance_measured acceptance_predicted auc calibrated_log_likelihood \
calibrated_log_likelihood_se ceiling ess flow_log_likelihood flow_log_likelihood_se log_loss \
log_z log_z_se "
[[ "$keys" == "$expected" ]] || fail "evaluate JSON keys: '$keys'"
grep -q '"auc": null' flow.json || fail "a plain flow's AUC should be null: $(cat flow.json)"

# The calibrated model beats the briefly trained flow on its own training rows.
value() { tr -d ' \n' <"$1" | grep -o "\"$2\":[-0-9.e]*" | cut -d: -f2; }
flow_ll="$(value metrics.json flow_log_likelihood)"
cal_ll="$(value metrics.json calibrated_log_likelihood)"
awk -v f="$flow_ll" -v c="$cal_ll" 'BEGIN { exit !(c > f) }' ||
  fail "calibrated log-likelihood $cal_ll is not above the flow's $flow_ll"

# evaluate with a known true log density per row, here the flow's own plus one nat: the share
# of the gap closed is then the calibrated model's gain in nats. A truth of the wrong length is
# refused, naming the file.
"$nfcal" score --model flow.nfcal --data train.csv --out flow_lp.csv "${quick[@]}" >/dev/null
awk 'NR == 1 { print "truth"; next } { printf "%.9g\n", $1 + 1 }' flow_lp.csv >truth.csv
"$nfcal" evaluate --model model.nfcal --data train.csv --true-log-density truth.csv \
  --acceptance-samples 0 --json truth.json "${quick[@]}" >truth.out
mentions truth.out "share of the gap closed"
closed="$(value truth.json gap_closed)"
true_ll="$(value truth.json true_log_likelihood)"
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(d < 1e-4 && d > -1e-4) }'; }
near "$true_ll" "$(awk -v f="$flow_ll" 'BEGIN { print f + 1 }')" ||
  fail "true_log_likelihood $true_ll should be one nat above the flow's $flow_ll"
near "$closed" "$(awk -v c="$cal_ll" -v f="$flow_ll" 'BEGIN { print c - f }')" ||
  fail "with a truth one nat above the flow, gap_closed $closed should be $cal_ll - $flow_ll"
head -n 11 truth.csv >short.csv
if "$nfcal" evaluate --model model.nfcal --data train.csv --true-log-density short.csv \
  --acceptance-samples 0 "${quick[@]}" >/dev/null 2>short.err; then
  fail "a true log density of 10 values for 1500 rows was accepted"
fi
mentions short.err "short.csv: 10 values for 1500 test rows"

# sample and score accept the bundle; equal seeds give equal files.
"$nfcal" sample --model model.nfcal --count 700 --out s1.npy --seed 4 "${quick[@]}" >/dev/null
"$nfcal" sample --model model.nfcal --count 700 --out s2.npy --seed 4 "${quick[@]}" >/dev/null
cmp -s s1.npy s2.npy || fail "equal seeds gave different calibrated samples"
"$nfcal" sample --model model.nfcal --count 5 --out s3.csv --seed 4 "${quick[@]}" >/dev/null

# sample --plot: a PNG beside the rows, no scratch folder left behind; a picture that cannot be
# drawn is an error that names the option, after the rows are written.
"$nfcal" sample --model model.nfcal --count 500 --out s4.npy --plot s4.png "${quick[@]}" \
  >plot.out
mentions plot.out "wrote s4.png"
[[ "$(head -c 4 s4.png | tail -c 3)" == "PNG" ]] || fail "s4.png is not a PNG"
compgen -G ".nfcal-plot-*" >/dev/null && fail "sample --plot left a scratch folder behind"
if "$nfcal" sample --model model.nfcal --count 5 --out s5.npy --plot s5.jpg "${quick[@]}" \
  >/dev/null 2>jpg.err; then
  fail "sample --plot s5.jpg was accepted"
fi
mentions jpg.err "should end in .png"
if NFCAL_PLOT_SCRIPT="$PWD/no_such_script.py" "$nfcal" sample --model model.nfcal --count 5 \
  --out s6.npy --plot s6.png "${quick[@]}" >/dev/null 2>noscript.err; then
  fail "sample --plot without a plotting script succeeded"
fi
mentions noscript.err "--plot"
[[ -e s6.npy && ! -e s6.png ]] || fail "a failed --plot should keep the rows and leave no picture"
[[ "$(wc -l <s3.csv)" -ge 5 ]] || fail "sample wrote too few rows: $(cat s3.csv)"
"$nfcal" score --model model.nfcal --data train.csv --out scores.npy "${quick[@]}" >score.out
score_ll="$(grep -o 'mean_log_likelihood=[-0-9.e]*' score.out | cut -d= -f2)"
awk -v s="$score_ll" -v c="$cal_ll" 'BEGIN { d = s - c; exit !(d < 1e-3 && d > -1e-3) }' ||
  fail "score's mean $score_ll differs from evaluate's $cal_ll"

if ((failures > 0)); then
  echo "cli_calibrate: $failures failure(s)" >&2
  exit 1
fi
echo "cli_calibrate: all checks passed"
