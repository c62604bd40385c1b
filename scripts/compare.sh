#!/usr/bin/env bash
# Runs nfcal and the PyTorch/XGBoost baseline (bench/baselines/maf_torch.py) on this machine
# and prints one table of ratios, nfcal / baseline, for density rows/s, flow sampling rows/s,
# classifier margin rows/s, calibrated samples/s end to end and flow training time to a given
# validation log-likelihood. It also calibrates the baseline's trained flow with nfcal's
# defaults, so that both calibrations of one flow can be compared against the true density.
#
# Before any speed is compared it checks equal work: every flow the baseline measured is
# exported, loaded into nfcal, and nfcal's float64 log densities must agree with the
# baseline's to 1e-4; the script fails otherwise.
#
# Usage: scripts/compare.sh
# Environment:
#   NFCAL_COMPARE_BUILD    nfcal build folder (default: build-compare in the source tree);
#                          configured with tests off when it has no CMakeCache.txt yet
#   NFCAL_COMPARE_OUT      where data, exports and JSON results go (default: BUILD/compare)
#   NFCAL_COMPARE_THREADS  threads on both sides (default: 2)
#   NFCAL_COMPARE_SIZES    DxHIDDEN list for the per-size rows (default: 8x64,8x256,64x256,784x256)
#   NFCAL_COMPARE_TARGET   validation log-likelihood that ends training (default: -12.0;
#                          the true density scores about -10.99 on this data)
#   NFCAL_COMPARE_KEEP_OPENBLAS_ENV=1  keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as set; by
#                          default both are unset for the measured commands, on both sides
# Not part of the test suite: it installs Debian packages and takes a few minutes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${NFCAL_COMPARE_BUILD:-$root/build-compare}"
out="${NFCAL_COMPARE_OUT:-$build/compare}"
threads="${NFCAL_COMPARE_THREADS:-2}"
sizes="${NFCAL_COMPARE_SIZES:-8x64,8x256,64x256,784x256}"
target="${NFCAL_COMPARE_TARGET:--12.0}"
python=/usr/bin/python3  # Debian's python3-torch and python3-xgboost live here

fail() { printf 'compare: FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*" >&2; }

# The baseline's packages, from Debian, only when something is missing.
install_packages() {
  if "$python" -c 'import numpy, torch, xgboost, threadpoolctl' 2>/dev/null; then return; fi
  step "installing python3-torch python3-xgboost python3-threadpoolctl"
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    python3-numpy python3-torch python3-xgboost python3-threadpoolctl libopenblas0-pthread
}

# The system BLAS must be OpenBLAS, not the reference implementation.
select_openblas() {
  local name=libblas.so.3-x86_64-linux-gnu
  local current
  current="$(update-alternatives --query "$name" | sed -n 's/^Value: //p')"
  if [[ "$current" == *openblas* ]]; then return; fi
  local candidate
  candidate="$(update-alternatives --list "$name" | grep openblas | head -n 1 || true)"
  [[ -n "$candidate" ]] || fail "no OpenBLAS alternative for $name (libopenblas0-pthread)"
  step "selecting $candidate for $name (was ${current:-unset})"
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  $sudo update-alternatives --set "$name" "$candidate"
}

# nfcal and nfcal_bench, an install prefix, and nfcal_compare built against that package.
build_nfcal() {
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    step "configuring $build"
    cmake -S "$root" -B "$build" -DNFCAL_BUILD_TESTS=OFF >/dev/null
  fi
  step "building nfcal and nfcal_bench"
  cmake --build "$build" -j "$threads" >"$out/build.log" 2>&1 ||
    { tail -n 40 "$out/build.log" >&2; fail "building nfcal"; }
  cmake --install "$build" --prefix "$build/compare-prefix" >/dev/null
  cmake -S "$root/bench/tools" -B "$build/compare-tools" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$build/compare-prefix" >"$out/tools.log" 2>&1 &&
    cmake --build "$build/compare-tools" -j "$threads" >>"$out/tools.log" 2>&1 ||
    { tail -n 40 "$out/tools.log" >&2; fail "building nfcal_compare"; }
}

# Runs a measured command with the BLAS environment both sides share.
measured() {
  if [[ "${NFCAL_COMPARE_KEEP_OPENBLAS_ENV:-0}" == 1 ]]; then
    "$@"
  else
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"
  fi
}

# nfcal_bench rows that match the baseline's measurements.
bench_filter() {
  local maf_sizes=""
  local item
  for item in ${sizes//,/ }; do
    maf_sizes+="${maf_sizes:+|}D:${item%x*}/hidden:${item#*x}/"
  done
  printf '^BM_Maf(LogProb|SampleDegreeOrdered|TrainStep)/(%s)|' "$maf_sizes"
  printf '^BM_XGBoostMargins/500/|^BM_CalibratedSampling/100000/'
}

mkdir -p "$out"
install_packages
select_openblas
build_nfcal
compare="$build/compare-tools/nfcal_compare"
bench="$build/bench/nfcal_bench"

step "machine: $(nproc) cores; load: $(uptime | sed 's/.*load average: //')"
uptime >"$out/uptime-before.txt"

step "data: the 8-D mixture of ten Gaussians"
"$compare" prepare "$out" --threads "$threads" >"$out/data.json"

step "baseline: PyTorch MAF, XGBoost, NumPy rejection loop (a few minutes)"
rm -rf "$out/baseline"
measured "$python" "$root/bench/baselines/maf_torch.py" --data "$out" --export "$out/baseline" \
  --sizes "$sizes" --threads "$threads" --target "$target" >"$out/baseline.json"

step "equal work: the baseline's flows loaded into nfcal"
: >"$out/checks.jsonl"
for flow in "$out"/baseline/flow_* "$out/baseline/trained_flow"; do
  if ! "$compare" check-flow "$flow" --tolerance 1e-4 >"$out/check.json"; then
    cat "$out/check.json" >&2
    fail "nfcal's log densities differ from the baseline's for $(basename "$flow")"
  fi
  tr -d '\n' <"$out/check.json" >>"$out/checks.jsonl"
  echo >>"$out/checks.jsonl"
done

step "nfcal: training to the target, calibrated sampling with the baseline's models"
measured "$compare" train "$out" --target "$target" --threads "$threads" >"$out/nfcal-train.json"
measured "$compare" calibrated "$out/baseline/trained_flow" "$out/baseline/classifier.json" \
  "$out/baseline/margin_rows.npy" --threads "$threads" >"$out/nfcal-calibrated.json"

step "nfcal: calibrate() with its defaults on the baseline's flow (a minute or two)"
measured "$compare" quality "$out/baseline/trained_flow" "$out" --threads "$threads" \
  >"$out/nfcal-quality.json"

step "nfcal_bench: the matching rows"
OMP_NUM_THREADS="$threads" measured "$bench" --benchmark_filter="$(bench_filter)" \
  --benchmark_format=json --benchmark_min_time=0.5 >"$out/nfcal-bench.json"
uptime >"$out/uptime-after.txt"

"$python" "$root/bench/baselines/compare_table.py" "$out" | tee "$out/summary.md"
