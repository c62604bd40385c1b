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
mentions moons/report.md "| flow calibrated by the exact density ratio, same ceiling |"
mentions moons/report.md "of the flow's gap to the true density"
mentions moons.log "calibrated"
mentions moons.log "exact ratio, same ceiling"
# The exact ratio can only gain on the flow, and the shares are consistent with the numbers.
python3 - moons/metrics.json <<'PYTHON' || fail "moons/metrics.json: exact-ratio numbers"
import json, sys
m = json.load(open(sys.argv[1]))
flow = m["test_log_likelihood"]["mean"]
exact = m["exact_ratio_test_log_likelihood"]["mean"]
truth = m["true_test_log_likelihood"]["mean"]
assert exact > flow, (exact, flow)
share = (exact - flow) / (truth - flow)
reported = m["exact_ratio_gap_closed"]
assert abs(share - reported["mean"]) < 1e-9, (share, reported)
assert 0 < reported["standard_error"] < 1, reported
PYTHON
if ((plots)); then
  has moons/density.png
  has moons/samples.png
else
  mentions moons/report.md "Pictures were skipped"
fi

# Log levels: --verbose adds the debug lines of every boosting round, --quiet leaves only
# warnings, and off a terminal no progress bar writes carriage returns.
verbose=("${tiny[@]/--quiet/--verbose}")
"$nfcal" demo --out loud --train-size 300 --test-size 100 --grid 20 --no-plots "${verbose[@]}" \
  >loud.log 2>loud.err
mentions loud.err "debug"
mentions loud.err "classifier round 1/20"
"$nfcal" demo --out hushed --train-size 300 --test-size 100 --grid 20 --no-plots "${tiny[@]}" \
  >hushed.log 2>hushed.err
if grep -q "info\]" hushed.err; then fail "--quiet still logs info lines"; fi
if grep -q $'\r' loud.err hushed.err; then fail "progress bars drawn off a terminal"; fi

# Images: a stand-in for Fashion-MNIST (IDX files of random 28 x 28 pixels) in --data-dir;
# the report gives bits per pixel and the pictures are grids of images.
be32() { printf "\\x%02x\\x%02x\\x%02x\\x%02x" $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
  $(($1 >> 8 & 255)) $(($1 & 255)); }
idx_images() {
  { printf '\x00\x00\x08\x03'; printf "$(be32 "$2")$(be32 28)$(be32 28)";
    head -c $(($2 * 784)) /dev/urandom; } | gzip >"$1"
}
mkdir fashion
idx_images fashion/train-images-idx3-ubyte.gz 60
idx_images fashion/t10k-images-idx3-ubyte.gz 20
"$nfcal" run --dataset fashion-mnist --data-dir fashion --out images --layers 1 --hidden 8 \
  --epochs 1 --trees 5 --log-z-samples 500 --samples 16 --threads 1 --quiet >images.log
mentions images/metrics.json '"pixel_space"'
mentions images/report.md "bits per pixel"
if ((plots)); then
  has images/samples.png
fi

# A user's 3-column CSV split by seed: marginals and pairs instead of densities.
awk 'BEGIN { srand(3); print "u,v,w";
             for (i = 0; i < 400; i++) {
               a = rand(); printf "%.5f,%.5f,%.5f\n", a, a * a + rand() / 10, rand() } }' \
  >rows.csv
"$nfcal" run --data rows.csv --out table --parallel-trees 2 --subsample 0.8 "${tiny[@]}" \
  >table.log
mentions table/metrics.json '"test_rows": 80'
mentions table/report.md "| parallel_trees | 2 |"
mentions table/report.md "| subsample | 0.8 |"
mentions table/metrics.json '"true_test_log_likelihood": null'
mentions table/metrics.json '"exact_ratio_test_log_likelihood": null'
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
mentions hopeless/report.md "**Warning: the rejection sampler would accept"
mentions hopeless/metrics.json '"warnings": ['
mentions hopeless.log "the rejection sampler would accept"
if ((plots)); then
  has hopeless/marginals.png
fi

((failures == 0)) || { printf 'cli_run: %d failures\n' "$failures" >&2; exit 1; }
printf 'cli_run: all cases passed\n'
