#!/usr/bin/env bash
# Runs `nfcal run` on every generated built-in dataset with several seeds (each seed draws
# new rows, a new flow and a new classifier), then prints the table of docs/results.md that
# shows how the share of the gap closed varies from one seed to the next.
#
# Usage: scripts/seeds.sh [OUT_DIR]          (default: results-seeds/ in the current folder)
# Environment:
#   NFCAL        the nfcal binary (default: build/nfcal beside this script's repository)
#   NFCAL_SEEDS  space-separated seeds (default: "0 1 2 3 4")
#   NFCAL_ARGS   more arguments for every run, e.g. "--parallel-trees 3 --subsample 0.7"
#   NFCAL_SETS   space-separated datasets (default: every generated built-in set)
# A run whose folder already has a metrics.json is not repeated. Runs draw no pictures.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
nfcal="${NFCAL:-$root/build/nfcal}"
out="${1:-results-seeds}"
read -r -a seeds <<<"${NFCAL_SEEDS:-0 1 2 3 4}"
read -r -a extra <<<"${NFCAL_ARGS:-}"
read -r -a datasets <<<"${NFCAL_SETS:-two-moons blobs ring checkerboard mixture-2d mixture-8d}"
mkdir -p "$out"

for name in "${datasets[@]}"; do
  for seed in "${seeds[@]}"; do
    run="$out/$name-$seed"
    [[ -f "$run/metrics.json" ]] && continue
    echo "seeds: nfcal run --dataset $name --seed $seed ${extra[*]} --out $run" >&2
    "$nfcal" run --dataset "$name" --seed "$seed" "${extra[@]}" --out "$run" --no-plots \
      --quiet >"$run.log" 2>&1 || { tail -n 20 "$run.log" >&2; exit 1; }
  done
done

python3 - "$out" "${seeds[*]}" "${datasets[*]}" <<'PYTHON'
import json, statistics, sys

out, seeds, datasets = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
print("| set | gap closed, seed by seed (%s) | mean | sd | exact ratio closes "
      "| flow's gap to the truth, nats | calibrated model's gap, nats |" % ", ".join(seeds))
print("|---|---|---:|---:|---:|---:|---:|")
for name in datasets:
    shares, exact, flow_gaps, model_gaps = [], [], [], []
    for seed in seeds:
        m = json.load(open("%s/%s-%s/metrics.json" % (out, name, seed)))
        truth = m["true_test_log_likelihood"]["mean"]
        shares.append(100 * m["gap_closed"]["mean"])
        exact.append(100 * m["exact_ratio_gap_closed"]["mean"])
        flow_gaps.append(truth - m["test_log_likelihood"]["mean"])
        model_gaps.append(truth - m["calibrated_test_log_likelihood"]["mean"])
    spread = statistics.stdev(shares) if len(shares) > 1 else float("nan")
    span = lambda values: "%.3f to %.3f" % (min(values), max(values))
    print("| %s | %s | %.0f%% | %.0f | %.0f%% | %s | %s |" % (
        name, ", ".join("%.0f%%" % s for s in shares), statistics.mean(shares), spread,
        statistics.mean(exact), span(flow_gaps), span(model_gaps)))
PYTHON
