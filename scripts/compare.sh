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
#        NFCAL_COMPARE_DEVICE=cuda scripts/compare.sh     (on a GPU node: both sides on the GPU)
# Environment:
#   NFCAL_COMPARE_DEVICE   where both sides compute: cpu (default), or cuda / cuda:N on a GPU
#                          node. With cuda, nfcal is built with its CUDA backend
#                          (NFCAL_CUDA=ON) and measured on that GPU; the baseline runs there
#                          with the PyTorch the node already has (torch.cuda.is_available()
#                          must be true; nothing comes from apt) and XGBoost with device=cuda,
#                          installed by `pip install xgboost` (the PyPI wheel, built with CUDA)
#                          only when that Python cannot import xgboost. The OpenBLAS selection
#                          of the CPU comparison is skipped.
#   NFCAL_COMPARE_PYTHON   the Python that runs the baseline (default: /usr/bin/python3 with
#                          Debian's packages on cpu; on cuda the python3 on PATH, which must
#                          have a CUDA build of torch)
#   NFCAL_COMPARE_BUILD    nfcal build folder (default: build-compare in the source tree);
#                          configured with tests off when it has no CMakeCache.txt yet
#   NFCAL_COMPARE_OUT      where data, exports and JSON results go (default: BUILD/compare)
#   NFCAL_COMPARE_THREADS  threads on both sides (default: 2)
#   NFCAL_COMPARE_SIZES    DxHIDDEN list for the per-size rows (default: 8x64,8x256,64x256,784x256)
#   NFCAL_COMPARE_TARGET   validation log-likelihood that ends training (default: -12.0;
#                          the true density scores about -10.99 on this data)
#   NFCAL_COMPARE_KEEP_OPENBLAS_ENV=1  keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as set; by
#                          default both are unset for the measured commands, on both sides
# Not part of the test suite: it installs packages (Debian's on the CPU; on a GPU node
# XGBoost's wheel, when missing) and takes a few minutes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${NFCAL_COMPARE_BUILD:-$root/build-compare}"
out="${NFCAL_COMPARE_OUT:-$build/compare}"
threads="${NFCAL_COMPARE_THREADS:-2}"
sizes="${NFCAL_COMPARE_SIZES:-8x64,8x256,64x256,784x256}"
target="${NFCAL_COMPARE_TARGET:--12.0}"
device="${NFCAL_COMPARE_DEVICE:-cpu}"

fail() { printf 'compare: FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*" >&2; }

[[ "$device" =~ ^(cpu|cuda(:[0-9]+)?)$ ]] ||
  fail "NFCAL_COMPARE_DEVICE='$device': expected cpu, cuda or cuda:N"
if [[ "$device" == cpu ]]; then
  python="${NFCAL_COMPARE_PYTHON:-/usr/bin/python3}"  # Debian's python3-torch lives here
else
  python="${NFCAL_COMPARE_PYTHON:-$(command -v python3 || true)}"
  [[ -n "$python" ]] || fail "no python3 on PATH; set NFCAL_COMPARE_PYTHON"
fi

# The baseline's packages, from Debian, only when something is missing.
install_packages() {
  if "$python" -c 'import numpy, torch, xgboost, threadpoolctl' 2>/dev/null; then return; fi
  [[ "$python" == /usr/bin/python3 ]] ||
    fail "$python lacks numpy, torch, xgboost or threadpoolctl; install them there, or" \
      "unset NFCAL_COMPARE_PYTHON to use Debian's packages in /usr/bin/python3"
  step "installing python3-torch python3-xgboost python3-threadpoolctl"
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    python3-numpy python3-torch python3-xgboost python3-threadpoolctl libopenblas0-pthread
}

# On a GPU node: the PyTorch already there, which must see the GPU, and XGBoost with CUDA,
# from PyPI only when the Python cannot import it.
gpu_packages() {
  local torch_check='
import sys
try:
    import torch
except ImportError as error:
    sys.exit("cannot import torch (%s)" % error)
if not torch.cuda.is_available():
    sys.exit("PyTorch %s finds no usable CUDA device (its CUDA build: %s)"
             % (torch.__version__, torch.version.cuda or "none"))
index = int(sys.argv[1].partition(":")[2] or 0)
if index >= torch.cuda.device_count():
    sys.exit("%s asked for, PyTorch sees %d CUDA device(s)"
             % (sys.argv[1], torch.cuda.device_count()))
'
  local xgboost_check='
import sys, xgboost
major = xgboost.__version__.split(".")[0]
sys.exit(0 if major.isdigit() and int(major) >= 2 and xgboost.build_info().get("USE_CUDA")
         else "XGBoost %s" % xgboost.__version__)
'
  local reason
  reason="$("$python" -c "$torch_check" "$device" 2>&1)" ||
    fail "$python: ${reason##*$'\n'}. On a GPU node the baseline uses the PyTorch installed" \
      "there; set NFCAL_COMPARE_PYTHON to the Python that has a CUDA build of torch"
  if ! "$python" -c 'import xgboost' 2>/dev/null; then
    step "installing XGBoost from PyPI into $python"
    "$python" -m pip install xgboost ||
      fail "pip could not install xgboost into $python; install it there (the PyPI wheel has" \
        "CUDA) or set NFCAL_COMPARE_PYTHON to a Python environment where pip may install"
  fi
  reason="$("$python" -c "$xgboost_check" 2>&1)" ||
    fail "$python: ${reason##*$'\n'} has no CUDA support or is older than 2.0; replace it" \
      "with the PyPI wheel: $python -m pip install --upgrade xgboost"
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
# On a GPU the build must have the CUDA backend: NFCAL_CUDA=ON fails without nvcc.
build_nfcal() {
  local cuda=()
  [[ "$device" == cpu ]] || cuda=(-DNFCAL_CUDA=ON)
  if [[ ! -f "$build/CMakeCache.txt" ]]; then
    step "configuring $build"
    cmake -S "$root" -B "$build" -DNFCAL_BUILD_TESTS=OFF "${cuda[@]}" >/dev/null
  elif ((${#cuda[@]})); then
    cmake -S "$root" -B "$build" "${cuda[@]}" >/dev/null
  fi
  step "building nfcal and nfcal_bench"
  cmake --build "$build" -j "$threads" >"$out/build.log" 2>&1 ||
    { tail -n 40 "$out/build.log" >&2; fail "building nfcal"; }
  cmake --install "$build" --prefix "$build/compare-prefix" >/dev/null
  if ! cmake -S "$root/bench/tools" -B "$build/compare-tools" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$build/compare-prefix" >"$out/tools.log" 2>&1 ||
    ! cmake --build "$build/compare-tools" -j "$threads" >>"$out/tools.log" 2>&1; then
    tail -n 40 "$out/tools.log" >&2
    fail "building nfcal_compare"
  fi
}

# Runs a measured command with the BLAS environment both sides share.
measured() {
  if [[ "${NFCAL_COMPARE_KEEP_OPENBLAS_ENV:-0}" == 1 ]]; then
    "$@"
  else
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"
  fi
}

# nfcal_bench rows that match the baseline's measurements: the CPU rows, or on a GPU the
# BM_Cuda rows (density on the fused kernel and on the general path, degree-ordered sampling,
# training epochs, and margins and calibrated sampling over 2^20 rows).
bench_filter() {
  local maf_sizes=""
  local item
  if [[ "$device" == cpu ]]; then
    for item in ${sizes//,/ }; do
      maf_sizes+="${maf_sizes:+|}D:${item%x*}/hidden:${item#*x}/"
    done
    printf '^BM_Maf(LogProb|SampleDegreeOrdered|TrainStep)/(%s)|' "$maf_sizes"
    printf '^BM_XGBoostMargins/500/|^BM_CalibratedSampling/100000/'
  else
    for item in ${sizes//,/ }; do
      maf_sizes+="${maf_sizes:+|}${item%x*}/${item#*x}/"
    done
    printf '^BM_CudaMaf(LogProb|Sample|TrainEpoch)/(%s)[0-9]+/0/|' "$maf_sizes"
    printf '^BM_CudaMafLogProb/(%s)[0-9]+/1/|' "$maf_sizes"
    printf '^BM_CudaXGBoostMargins/(100|2000)/20/|^BM_CudaCalibratedSampling/20/'
  fi
}

mkdir -p "$out"
if [[ "$device" == cpu ]]; then
  install_packages
  select_openblas
else
  gpu_packages
fi
build_nfcal
compare="$build/compare-tools/nfcal_compare"
bench="$build/bench/nfcal_bench"

step "device: $device"
"$compare" device --device "$device" --threads "$threads" >"$out/device.json" ||
  fail "nfcal cannot compute on $device (see the message above)"

step "machine: $(nproc) cores; load: $(uptime | sed 's/.*load average: //')"
uptime >"$out/uptime-before.txt"

step "data: the 8-D mixture of ten Gaussians"
"$compare" prepare "$out" --threads "$threads" >"$out/data.json"

step "baseline on $device: PyTorch MAF, XGBoost, rejection loop (a few minutes)"
rm -rf "$out/baseline"
measured "$python" "$root/bench/baselines/maf_torch.py" --data "$out" --export "$out/baseline" \
  --sizes "$sizes" --threads "$threads" --target "$target" --device "$device" \
  >"$out/baseline.json"

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

step "nfcal on $device: training to the target, calibrated sampling with the baseline's models"
measured "$compare" train "$out" --target "$target" --threads "$threads" --device "$device" \
  >"$out/nfcal-train.json"
measured "$compare" calibrated "$out/baseline/trained_flow" "$out/baseline/classifier.json" \
  "$out/baseline/margin_rows.npy" --threads "$threads" --device "$device" \
  >"$out/nfcal-calibrated.json"

step "nfcal on $device: calibrate() with its defaults on the baseline's flow (a minute or two)"
measured "$compare" quality "$out/baseline/trained_flow" "$out" --threads "$threads" \
  --device "$device" >"$out/nfcal-quality.json"

step "nfcal_bench: the matching rows"
OMP_NUM_THREADS="$threads" measured "$bench" --benchmark_filter="$(bench_filter)" \
  --benchmark_format=json --benchmark_min_time=0.5 >"$out/nfcal-bench.json"
uptime >"$out/uptime-after.txt"

"$python" "$root/bench/baselines/compare_table.py" "$out" | tee "$out/summary.md"
