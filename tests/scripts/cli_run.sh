#!/usr/bin/env bash
# nfcal run and nfcal demo end to end on tiny settings: the report folder holds the models,
# samples, metrics.json and report.md; pictures are drawn when a Python with matplotlib is
# found, and otherwise the run still succeeds and report.md says why they were skipped.
# Usage: cli_run.sh SOURCE_DIR BINARY_DIR NFCAL
set -euo pipefail

nfcal="$3"
work="$(mktemp -d "${TMPDIR:-/tmp}/nfcal-run.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
failures=0
fail() { printf 'cli_run: FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
has() { [[ -s "$1" ]] || fail "$1 is missing or empty"; }
mentions() { grep -qF -- "$2" "$1" || fail "$1 does not mention '$2'"; }
tiny=(--epochs 2 --layers 2 --hidden 8 --trees 20 --log-z-samples 2000 --threads 1 --quiet)

# Does this machine draw pictures? The same test the tool makes.
plots=0
for python in /usr/bin/python3 python3; do
  if "$python" -c 'import matplotlib, numpy' 2>/dev/null; then plots=1; break; fi
done

# 2-D built-in data: densities on a grid, the truth beside the models.
"$nfcal" demo --out moons --train-size 600 --test-size 200 --grid 40 "${tiny[@]}" >moons.log
for file in flow.nfcal model.nfcal test.npy samples.npy samples_flow.npy density_flow.npy \
  density_calibrated.npy density_true.npy metrics.json report.md; do
  has "moons/$file"
done
mentions moons/report.md "| true density |"
mentions moons/report.md "| calibrated (flow + classifier) |"
mentions moons.log "calibrated"
if ((plots)); then
  has moons/density.png
  has moons/samples.png
else
  mentions moons/report.md "Pictures were skipped"
fi

# A user's 3-column CSV split by seed: marginals and pairs instead of densities.
awk 'BEGIN { srand(3); print "u,v,w";
             for (i = 0; i < 400; i++) { a = rand(); printf "%.5f,%.5f,%.5f\n", a, a * a + rand() / 10, rand() } }' >rows.csv
"$nfcal" run --data rows.csv --out table "${tiny[@]}" >table.log
mentions table/metrics.json '"test_rows": 80'
mentions table/metrics.json '"true_test_log_likelihood": null'
if ((plots)); then
  has table/marginals.png
  has table/pairs.png
fi

# No Python to be found: the run succeeds and says why there are no pictures.
NFCAL_PYTHON=/nonexistent/python3 "$nfcal" run --data rows.csv --out bare "${tiny[@]}" \
  >bare.log 2>bare.err
mentions bare/report.md "Pictures were skipped: no Python with matplotlib"
[[ ! -e bare/marginals.png ]] || fail "bare/marginals.png was drawn without Python"

# A ceiling no sampler can reach: the run still writes the model and its numbers, and the
# report says why the calibrated samples are missing.
"$nfcal" run --data rows.csv --out hopeless --ceiling 40 "${tiny[@]}" >hopeless.log 2>&1 ||
  fail "nfcal run failed when only its sampler could not finish"
has hopeless/model.nfcal
mentions hopeless/metrics.json '"sampling_failure": "rejection sampling stopped at its cap'
mentions hopeless/report.md "The calibrated model's samples are missing"
if ((plots)); then
  has hopeless/marginals.png
fi

((failures == 0)) || { printf 'cli_run: %d failures\n' "$failures" >&2; exit 1; }
printf 'cli_run: all cases passed\n'
