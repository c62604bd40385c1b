#!/usr/bin/env bash
# Cross-checks nfcal's .npy and CSV handling against NumPy itself, through the real binary:
# files NumPy writes in every supported variant score identically, files nfcal writes load
# in NumPy with the right shapes and types, and Fortran-order arrays are refused.
# Skipped (with a message, exit 0) when python3 cannot import numpy.
# Usage: cli_numpy_interop.sh SOURCE_DIR BINARY_DIR NFCAL_CLI
set -euo pipefail

nfcal="$3"
python=""
for candidate in /usr/bin/python3 python3; do
  if "$candidate" -c 'import numpy' 2>/dev/null; then python="$candidate"; break; fi
done
if [[ -z "$python" ]]; then
  echo "cli_numpy_interop: SKIPPED (no python3 with numpy; scripts/setup.sh installs one)"
  exit 0
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/nfcal-numpy-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { printf 'cli_numpy_interop: FAIL: %s\n' "$*" >&2; exit 1; }

# The same rows in every layout NumPy can write that nfcal reads.
"$python" - <<'PY'
import numpy as np
from numpy.lib import format as npf
rng = np.random.default_rng(3)
x = rng.normal(size=(300, 2)) @ np.array([[1.0, 0.6], [0.0, 0.8]])
np.save("train.npy", x)
test = x[:40]
np.save("test_f8.npy", test)
np.save("test_f8_be.npy", test.astype(">f8"))
for version in [(1, 0), (2, 0), (3, 0)]:
    with open("test_v%d.npy" % version[0], "wb") as f:
        npf.write_array(f, test, version=version)
np.save("test_f4.npy", test.astype("<f4"))
np.save("test_f4_be.npy", test.astype(">f4"))
np.save("test_fortran.npy", np.asfortranarray(test))
np.savetxt("test.csv", test, delimiter=",", header="a,b", comments="", fmt="%.17g")
np.save("ints.npy", np.array([[1, 2], [3, 4]], dtype=">i4"))
PY

"$nfcal" fit --data train.npy --out flow.nfcal --layers 2 --hidden 8 --epochs 3 --quiet \
  >/dev/null || fail "fit on a NumPy file"

# Every float64 layout gives the same log densities, bit for bit; float32 within rounding.
for name in f8 f8_be v1 v2 v3 f4 f4_be; do
  "$nfcal" score --model flow.nfcal --data "test_$name.npy" --out "lp_$name.npy" --quiet \
    >/dev/null || fail "score on test_$name.npy"
done
"$nfcal" score --model flow.nfcal --data test.csv --out lp_csv.npy --quiet >/dev/null ||
  fail "score on a CSV file NumPy wrote"
"$nfcal" score --model flow.nfcal --data ints.npy --out lp_ints.csv --quiet >/dev/null ||
  fail "score on an integer array"
"$nfcal" sample --model flow.nfcal --count 25 --out samples.npy --seed 1 --quiet >/dev/null ||
  fail "sample"

"$python" - <<'PY' || fail "NumPy disagrees with nfcal's files"
import numpy as np
ref = np.load("lp_f8.npy")
assert ref.shape == (40,) and ref.dtype == np.float32, (ref.shape, ref.dtype)
for name in ["f8_be", "v1", "v2", "v3", "csv"]:
    assert np.array_equal(np.load("lp_%s.npy" % name), ref), name
for name in ["f4", "f4_be"]:
    assert np.allclose(np.load("lp_%s.npy" % name), ref, atol=1e-4), name
lp_ints = np.loadtxt("lp_ints.csv", skiprows=1)
assert lp_ints.shape == (2,)
s = np.load("samples.npy")
assert s.shape == (25, 2) and s.dtype == np.float32 and np.isfinite(s).all()
print("numpy reads nfcal's files and nfcal reads numpy's")
PY

# Fortran order is refused with a message that says how to fix it, and writes nothing.
if "$nfcal" score --model flow.nfcal --data test_fortran.npy --out lp_fortran.npy \
  2>err.txt >/dev/null; then
  fail "a Fortran-order array was accepted"
fi
grep -q "test_fortran.npy: .npy array is in Fortran (column-major) order" err.txt ||
  { cat err.txt; fail "unexpected message for a Fortran-order array"; }
[[ ! -e lp_fortran.npy ]] || fail "a failed score left an output file"
echo "cli_numpy_interop: PASS"
