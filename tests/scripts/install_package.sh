#!/usr/bin/env bash
# Installs a build into a temporary prefix, moves the prefix elsewhere (the package must be
# relocatable), then builds examples/ against it out of tree as a user would and runs both.
# Usage: install_package.sh SOURCE_DIR BINARY_DIR [NFCAL_CLI]
set -euo pipefail

source_dir="$(cd "$1" && pwd)"
binary_dir="$(cd "$2" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/nfcal-install-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT

fail() { printf 'install_package: FAIL: %s\n' "$*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

# Install, then move: nothing may depend on the path the package was installed to.
step "cmake --install into a staging prefix, then move it"
cmake --install "$binary_dir" --prefix "$work/staging" >"$work/install.log" ||
  { cat "$work/install.log"; fail "cmake --install failed"; }
mv "$work/staging" "$work/prefix"
prefix="$work/prefix"

# Every piece a user needs is where the package says it is.
step "installed files"
library="$(find "$prefix" -name 'libnfcal_cuda.so' | head -n 1)"
[[ -n "$library" ]] || fail "libnfcal_cuda.so is not installed"
libdir="$(dirname "$library")"
for file in \
  "$prefix/include/nfcal/nfcal.hpp" \
  "$prefix/include/nfcal/version.hpp" \
  "$prefix/bin/nfcal" \
  "$libdir/nfcal/xgboost/lib/libxgboost.so" \
  "$libdir/cmake/nfcal/nfcalConfig.cmake" \
  "$libdir/cmake/nfcal/nfcalConfigVersion.cmake" \
  "$libdir/cmake/nfcal/nfcalTargets.cmake"; do
  [[ -e "$file" ]] || fail "missing ${file#"$prefix"/}"
  printf '  %s\n' "${file#"$prefix"/}"
done
compgen -G "$libdir/nfcal/xgboost.libs/*.so*" >/dev/null ||
  fail "XGBoost's bundled OpenMP runtime (xgboost.libs) is not installed"
if [[ -e "$binary_dir/bench/nfcal_bench" ]]; then
  [[ -x "$prefix/bin/nfcal_bench" ]] || fail "nfcal_bench was built but not installed"
fi
for header in "$source_dir"/include/nfcal/*.hpp; do
  name="$(basename "$header")"
  [[ -e "$prefix/include/nfcal/$name" ]] || fail "public header $name is not installed"
  if [[ "$name" != nfcal.hpp ]]; then
    grep -qF "#include \"nfcal/$name\"" "$prefix/include/nfcal/nfcal.hpp" ||
      fail "the umbrella header nfcal/nfcal.hpp does not include nfcal/$name"
  fi
done

# The installed programs and library find all their libraries from the moved prefix alone.
step "shared libraries resolve from the moved prefix"
for binary in "$prefix/bin/nfcal" "$library" "$libdir/nfcal/xgboost/lib/libxgboost.so"; do
  if LD_LIBRARY_PATH='' ldd "$binary" | grep -q 'not found'; then
    LD_LIBRARY_PATH='' ldd "$binary" | grep 'not found' >&2
    fail "$(basename "$binary") has unresolved libraries"
  fi
done
LD_LIBRARY_PATH='' "$prefix/bin/nfcal" --help >"$work/help.txt" ||
  fail "installed nfcal --help exited non-zero"
echo "  nfcal --help runs"

# A user's project: find_package(nfcal CONFIG REQUIRED) and nfcal::nfcal_cuda, nothing else.
step "build examples/ against the installed package"
cmake -S "$source_dir/examples" -B "$work/example" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configuring the example"; }
grep -q "nfcal .* from $prefix/" "$work/configure.log" ||
  { cat "$work/configure.log"; fail "the example did not find nfcal in the installed prefix"; }
cmake --build "$work/example" -j2 >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "building the example"; }

step "run the example"
LD_LIBRARY_PATH='' "$work/example/fit_and_sample" | tee "$work/example.txt"

# Its output: close to the true log-likelihood, and samples with the data's correlation.
number='\([-0-9.]*\)'
read -r model truth < <(sed -n \
  "s/^test log-likelihood: $number nats (true distribution: $number)\$/\\1 \\2/p" \
  "$work/example.txt")
read -r correlation < <(sed -n "s/^samples: 5000, correlation $number (data 0.800)\$/\\1/p" \
  "$work/example.txt")
[[ -n "${model:-}" && -n "${correlation:-}" ]] || fail "unexpected output from the example"
awk -v m="$model" -v t="$truth" 'BEGIN { exit !(m > t - 0.1 && m < t + 0.1) }' ||
  fail "test log-likelihood $model is not within 0.1 nats of the true $truth"
awk -v c="$correlation" 'BEGIN { exit !(c > 0.76 && c < 0.84) }' ||
  fail "sample correlation $correlation is not within 0.04 of 0.8"

# The calibration example: calibration gains on the flow, and its exact samples leave the
# empty gap between the blobs that the small flow bridges.
step "run the calibration example"
LD_LIBRARY_PATH='' "$work/example/calibrate_and_sample" | tee "$work/calibration.txt"
read -r flow_ll calibrated_ll < <(sed -n \
  "s/^test log-likelihood: flow $number, calibrated $number, truth $number nats\$/\\1 \\2/p" \
  "$work/calibration.txt")
read -r data_gap flow_gap calibrated_gap < <(sed -n \
  "s/^share in the gap: data $number, flow $number, calibrated $number\$/\\1 \\2 \\3/p" \
  "$work/calibration.txt")
[[ -n "${flow_ll:-}" && -n "${flow_gap:-}" ]] ||
  fail "unexpected output from the calibration example"
grep -q "^gap to the truth closed: " "$work/calibration.txt" ||
  fail "the calibration example printed no share of the gap closed"
awk -v f="$flow_ll" -v c="$calibrated_ll" 'BEGIN { exit !(c > f) }' ||
  fail "calibrated log-likelihood $calibrated_ll is not above the flow's $flow_ll"
awk -v d="$data_gap" -v f="$flow_gap" -v c="$calibrated_gap" \
  'BEGIN { exit !(f > 2 * d && c < 0.5 * f) }' ||
  fail "gap shares data $data_gap, flow $flow_gap, calibrated $calibrated_gap: no bridge removed"
printf '\ninstall_package: PASS\n'
