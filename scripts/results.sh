#!/usr/bin/env bash
# Runs `nfcal run` on every built-in dataset, on the 8-D mixture at the size of the published
# comparison, and on Fashion-MNIST when it is installed, then prints the table of
# docs/results.md from the runs' metrics.json files.
#
# Usage: scripts/results.sh [OUT_DIR]        (default: results/ in the current folder)
# Environment:
#   NFCAL       the nfcal binary (default: build/nfcal beside this script's repository)
#   NFCAL_SKIP  space-separated run names to leave out, e.g. "fashion-mnist"
# Each run's folder holds its report.md, metrics.json and pictures; a run whose folder already
# has a metrics.json is not repeated, so an interrupted script picks up where it stopped.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nfcal="${NFCAL:-$root/build/nfcal}"
out="${1:-results}"
skip=" ${NFCAL_SKIP:-} "
mkdir -p "$out"

# name | arguments after `nfcal run`
runs=(
  "two-moons|--dataset two-moons"
  "blobs|--dataset blobs"
  "ring|--dataset ring"
  "checkerboard|--dataset checkerboard"
  "mixture-2d|--dataset mixture-2d"
  "mixture-8d|--dataset mixture-8d"
  "mixture-8d-97k|--dataset mixture-8d --train-size 97200 --hidden 128"
  "fashion-mnist|--dataset fashion-mnist --hidden 1024 --hidden-layers 1 --epochs 10
   --batch-size 128 --learning-rate 1e-4 --test-size 2000"
)

for entry in "${runs[@]}"; do
  name="${entry%%|*}"
  args="$(tr -s ' \n' ' ' <<<"${entry#*|}")"
  [[ "$skip" == *" $name "* ]] && continue
  if [[ -f "$out/$name/metrics.json" ]]; then
    echo "results: $name already done" >&2
    continue
  fi
  if [[ "$name" == fashion-mnist ]] &&
    ! "$nfcal" datasets | grep -q 'fashion-mnist .*installed'; then
    echo "results: $name skipped (apt-get install dataset-fashion-mnist)" >&2
    continue
  fi
  echo "results: nfcal run $args --out $out/$name" >&2
  # shellcheck disable=SC2086 # the arguments are words on purpose
  "$nfcal" run $args --out "$out/$name" --quiet >"$out/$name.log" 2>&1 ||
    { tail -n 20 "$out/$name.log" >&2; exit 1; }
done

python3 - "$out" <<'PYTHON'
import json, os, sys

out = sys.argv[1]
print("| run | dim | train rows | flow | calibrated | gain | truth | gap closed "
      "| exact ratio closes | AUC | trees kept | L | acceptance | seconds |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name in sorted(os.listdir(out)):
    path = os.path.join(out, name, "metrics.json")
    if not os.path.isfile(path):
        continue
    m = json.load(open(path))
    flow, cal = m["test_log_likelihood"], m["calibrated_test_log_likelihood"]
    gain = m["calibration_gain"]
    truth = m.get("true_test_log_likelihood")
    share = lambda key: "" if m.get(key) is None else "%.0f%% +- %.0f%%" % (
        100 * m[key]["mean"], 100 * m[key]["standard_error"])
    c, k = m["calibrated_model"], m["classifier"]
    fmt = lambda e: "%.3f +- %.3f" % (e["mean"], e["standard_error"])
    print("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %.3f | %d / %d | %s | %.1f%% | %.0f |" % (
        name, m["dim"], m["train_rows"], fmt(flow), fmt(cal), fmt(gain),
        fmt(truth) if truth else "", share("gap_closed"), share("exact_ratio_gap_closed"),
        k["auc"], k["trees_kept"], k["trees_trained"],
        "none" if c["ceiling"] is None else "%.2f" % c["ceiling"],
        100 * c["acceptance_measured"], m["seconds"]["total"]))
    if "pixel_space" in m:
        p = m["pixel_space"]
        print("| %s, bits per pixel | | | %s | %s | | | | | | | | | |" % (
            name, fmt(p["flow_bits_per_pixel"]), fmt(p["calibrated_bits_per_pixel"])))
PYTHON
