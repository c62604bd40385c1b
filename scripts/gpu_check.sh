#!/usr/bin/env bash
# The GPU check of nfcal's CUDA backend, for a fresh machine with one Hopper GPU (H100/H200)
# and no network. It installs nothing: XGBoost (and, where the machine lacks them, the build
# dependencies) come in folders it is told about. Steps, each with a time limit, all within
# about 8 minutes on one H200:
#   1. configure for sm_90 and build nfcal_tests and nfcal_bench (skipped with --prebuilt);
#   2. run the GPU tests and the CPU tests of the kernel math (GoogleTest filter);
#   3. compute-sanitizer memcheck and racecheck on small cases of every kernel;
#   4. the GPU benchmarks with a short minimum time;
#   5. a short table: test counts, parity errors, sanitizer findings, throughputs.
# Logs and JSON results go to --out (default $OUT when set, else ./gpu-check-results).
#
# Usage, from the repository root:
#   scripts/gpu_check.sh --xgboost DIR [--deps DIR] [--build DIR] [--out DIR] [--prebuilt]
#                        [--bench-filter REGEX] [--bench-min-time SECONDS]
#   scripts/gpu_check.sh --prepare-deps DIR     (on the CPU machine: fill a carry folder)
#
#   --xgboost DIR   XGBoost's C API in the layout of scripts/setup.sh (include/xgboost/c_api.h,
#                   xgboost/lib/libxgboost.so), or a folder holding xgboost.tar.xz of that
#                   layout, unpacked to a temporary folder first. Default: $NFCAL_XGBOOST_ROOT.
#   --deps DIR      a prefix with include/, lib/ and CMake package files of the libraries the
#                   machine lacks (made by --prepare-deps); added to the search paths.
#   --prebuilt      use the binaries already in --build instead of building.
# See docs/cuda.md, "Running the GPU check", for how to carry XGBoost within 64 MiB.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
XGBOOST="${NFCAL_XGBOOST_ROOT:-}"
DEPS=""
BUILD="$ROOT/build-gpu-check"
RESULTS="${OUT:-$ROOT/gpu-check-results}"
PREBUILT=0
BENCH_FILTER='BM_Cuda(MafLogProb/(8|64)/|MafTrainEpoch/(8|64)/|MafSample/8/(64|128|256)/'
BENCH_FILTER+='|MafSample/64/256/|XGBoostMargins/100/|AcceptCompact|CalibratedSampling/20)'
BENCH_MIN_TIME=0.05
PREPARE=""

log() { printf '[gpu_check] %s\n' "$*"; }
die() { printf '[gpu_check] error: %s\n' "$*" >&2; exit 1; }

while (($#)); do
  case "$1" in
    --xgboost) XGBOOST="$2"; shift 2 ;;
    --deps) DEPS="$2"; shift 2 ;;
    --build) BUILD="$2"; shift 2 ;;
    --out) RESULTS="$2"; shift 2 ;;
    --prebuilt) PREBUILT=1; shift ;;
    --bench-filter) BENCH_FILTER="$2"; shift 2 ;;
    --bench-min-time) BENCH_MIN_TIME="$2"; shift 2 ;;
    --prepare-deps) PREPARE="$2"; shift 2 ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

# --- On the CPU machine: copy the Debian packages' files a bare GPU image may lack. ---------
# Headers, shared libraries and CMake package files only, under one prefix, so that
# CMAKE_PREFIX_PATH finds them; binaries of this Debian 12 machine (glibc 2.36) also run on
# newer glibc. Typically about 40 MB uncompressed; carry it as DIR.tar.xz if space is short.
prepare_deps() {
  local target="$1"
  local packages=(libgtest-dev libgmock-dev googletest libbenchmark-dev libbenchmark1debian
                  nlohmann-json3-dev libcli11-dev libspdlog-dev libspdlog1.10 libfmt-dev
                  libfmt9 libopenblas-dev libopenblas0-pthread libopenblas-pthread-dev
                  libopenblas0 libeigen3-dev zlib1g-dev libgfortran5)
  mkdir -p "$target" || die "cannot create $target"
  local pkg file
  for pkg in "${packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || { log "not installed here, skipped: $pkg"; continue; }
    while IFS= read -r file; do
      [[ -f "$file" || -L "$file" ]] || continue
      case "$file" in
        /usr/include/*|/usr/lib/*|/usr/share/*/cmake/*|/usr/src/googletest/*) ;;
        *) continue ;;
      esac
      [[ "$file" == /usr/share/doc/* ]] && continue
      mkdir -p "$target$(dirname "${file#/usr}")"
      cp -a "$file" "$target${file#/usr}"
    done < <(dpkg -L "$pkg")
  done
  # Package files that name absolute /usr paths get paths relative to their own folder.
  local config relative
  while IFS= read -r config; do
    relative="$(realpath --relative-to="$(dirname "$config")" "$target")"
    sed -i "s|/usr/|\${CMAKE_CURRENT_LIST_DIR}/$relative/|g" "$config"
  done < <(grep -rl --include='*.cmake' '/usr/' "$target" || true)
  log "dependencies copied to $target ($(du -sh "$target" | cut -f1))"
}

if [[ -n "$PREPARE" ]]; then
  prepare_deps "$PREPARE"
  exit 0
fi

START=$SECONDS
mkdir -p "$RESULTS" || die "cannot create $RESULTS"
cd "$ROOT" || die "cannot enter $ROOT"

# --- Tools and the device ---------------------------------------------------------------------
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader | tee "$RESULTS/device.txt"
SANITIZER="$(command -v compute-sanitizer || true)"
[[ -z "$SANITIZER" && -x /usr/local/cuda/bin/compute-sanitizer ]] &&
  SANITIZER=/usr/local/cuda/bin/compute-sanitizer

# --- XGBoost and carried dependencies --------------------------------------------------------
[[ -n "$XGBOOST" ]] || die "no XGBoost folder: pass --xgboost DIR or set NFCAL_XGBOOST_ROOT"
if [[ -f "$XGBOOST/xgboost.tar.xz" ]]; then
  unpacked="$(mktemp -d /tmp/nfcal-xgboost.XXXXXX)"
  tar -xJf "$XGBOOST/xgboost.tar.xz" -C "$unpacked" || die "cannot unpack xgboost.tar.xz"
  XGBOOST="$unpacked"
fi
XGBOOST="$(cd "$XGBOOST" && pwd)"
[[ -f "$XGBOOST/include/xgboost/c_api.h" ]] || die "$XGBOOST has no include/xgboost/c_api.h"
[[ -f "$XGBOOST/xgboost/lib/libxgboost.so" ]] || die "$XGBOOST has no xgboost/lib/libxgboost.so"
export LD_LIBRARY_PATH="$XGBOOST/xgboost/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
PREFIX_ARGS=()
if [[ -n "$DEPS" ]]; then
  if [[ -f "$DEPS.tar.xz" && ! -d "$DEPS" ]]; then
    mkdir -p "$DEPS" || die "cannot create $DEPS"
    tar -xJf "$DEPS.tar.xz" -C "$DEPS" || die "cannot unpack $DEPS.tar.xz"
  fi
  DEPS="$(cd "$DEPS" && pwd)"
  multiarch="$DEPS/lib/x86_64-linux-gnu"
  export LD_LIBRARY_PATH="$multiarch:$multiarch/openblas-pthread:$DEPS/lib:$LD_LIBRARY_PATH"
  export CPATH="$DEPS/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$multiarch:$DEPS/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  PREFIX_ARGS=(-DCMAKE_PREFIX_PATH="$DEPS;$multiarch/cmake;$multiarch/openblas-pthread"
               -DCMAKE_LIBRARY_PATH="$multiarch")
fi

# --- 1. Build ----------------------------------------------------------------------------------
if ((PREBUILT == 0)); then
  log "configure for sm_90 in $BUILD"
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  timeout 120 cmake -S "$ROOT" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DNFCAL_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DNFCAL_XGBOOST_ROOT="$XGBOOST" \
    "${PREFIX_ARGS[@]}" >"$RESULTS/configure.log" 2>&1 ||
    { tail -n 30 "$RESULTS/configure.log";
      die "configure failed (missing dependency? see --deps)"; }
  log "build nfcal_tests and nfcal_bench"
  timeout 300 cmake --build "$BUILD" --target nfcal_tests nfcal_bench -j "$(nproc)" \
    >"$RESULTS/build.log" 2>&1 || { tail -n 40 "$RESULTS/build.log"; die "build failed"; }
fi
TESTS="$BUILD/tests/nfcal_tests"
BENCH="$BUILD/bench/nfcal_bench"
[[ -x "$TESTS" ]] || die "no test binary at $TESTS"
log "build ready after $((SECONDS - START)) s"

# --- 2. Tests ----------------------------------------------------------------------------------
TEST_FILTER='Cuda*:KernelMath*'
log "GPU tests ($TEST_FILTER)"
timeout 240 "$TESTS" --gtest_filter="$TEST_FILTER" --gtest_output="json:$RESULTS/tests.json" \
  >"$RESULTS/tests.log" 2>&1
TEST_STATUS=$?
grep -E '^\[parity\]' "$RESULTS/tests.log" >"$RESULTS/parity.txt" || true
grep -E '^\[  FAILED  \]' "$RESULTS/tests.log" | sort -u | head -n 20

# --- 3. Sanitizers on small cases ----------------------------------------------------------
SMALL='CudaMafDensity.FusedKernelMatchesTheCpuMaf:CudaMafDensity.GeneralPathMatchesTheCpuMaf:'
SMALL+='CudaMafSampling.NaiveKernelGivesTheSameRows:CudaMafSampling.SamplesMatch*:'
SMALL+='CudaAccept.*:CudaCalibratedSampling.AcceptedRowsMatch*:CudaTrain.MaskedWeights*'
RACY='CudaMafDensity.FusedKernelMatchesTheCpuMaf:CudaMafSampling.SamplesMatch*:CudaAccept.*'
sanitize() {
  local tool="$1" filter="$2"
  if [[ -z "$SANITIZER" ]]; then echo "not run (no compute-sanitizer)"; return; fi
  timeout 150 "$SANITIZER" --tool "$tool" --error-exitcode 99 "$TESTS" \
    --gtest_filter="$filter" >"$RESULTS/sanitizer-$tool.log" 2>&1
  local status=$?
  local errors
  errors="$(grep -Eo 'ERROR SUMMARY: [0-9]+' "$RESULTS/sanitizer-$tool.log" | tail -n 1 |
            grep -Eo '[0-9]+$' || true)"
  if ((status == 124)); then echo "timed out"; else echo "${errors:-?} errors (exit $status)"; fi
}
log "compute-sanitizer memcheck and racecheck"
MEMCHECK="$(sanitize memcheck "$SMALL")"
RACECHECK="$(sanitize racecheck "$RACY")"

# --- 4. Benchmarks ---------------------------------------------------------------------------
if [[ -x "$BENCH" ]]; then
  log "benchmarks ($BENCH_FILTER, min time ${BENCH_MIN_TIME}s)"
  timeout 200 "$BENCH" --benchmark_filter="$BENCH_FILTER" \
    --benchmark_min_time="$BENCH_MIN_TIME" --benchmark_out="$RESULTS/bench.json" \
    --benchmark_out_format=json >"$RESULTS/bench.log" 2>&1 || log "benchmarks ended early"
fi

# --- 5. Table --------------------------------------------------------------------------------
python3 - "$RESULTS" "$MEMCHECK" "$RACECHECK" "$((SECONDS - START))" <<'PY'
import json, os, sys
results, memcheck, racecheck, seconds = sys.argv[1:5]
print("\n## nfcal GPU check\n")
try:
    print("device: " + open(os.path.join(results, "device.txt")).read().strip())
except OSError:
    print("device: unknown (no nvidia-smi)")
try:
    t = json.load(open(os.path.join(results, "tests.json")))
    skipped = sum(1 for s in t["testsuites"] for c in s["testsuite"]
                  if c.get("result") == "SKIPPED")
    print(f"tests: {t['tests']} selected, {t['failures']} failed, {skipped} skipped")
except (OSError, ValueError, KeyError):
    print("tests: no JSON result (crash or timeout; see tests.log)")
print(f"memcheck: {memcheck}\nracecheck: {racecheck}\n")
print("| parity check | max relative error |\n|---|---|")
try:
    for line in open(os.path.join(results, "parity.txt")):
        _, name, value = line.split()
        print(f"| {name} | {value} |")
except OSError:
    pass
print("\n| benchmark | ms | rows/s | GFLOP/s | GB/s |\n|---|---|---|---|---|")
try:
    for b in json.load(open(os.path.join(results, "bench.json")))["benchmarks"]:
        if b.get("error_occurred"):
            print(f"| {b['name']} | skipped: {b.get('error_message', '')} | | | |")
            continue
        rate = b.get("items_per_second", 0.0)
        flops = b.get("flop_per_s", 0.0) / 1e9
        gbs = b.get("bytes_per_s", 0.0) / 1e9
        print(f"| {b['name']} | {b['real_time']:.3f} | {rate:.3e} | {flops:.1f} | {gbs:.1f} |")
except (OSError, ValueError, KeyError):
    print("| (no benchmark results) | | | | |")
print(f"\ntotal time: {seconds} s")
PY
exit $TEST_STATUS
