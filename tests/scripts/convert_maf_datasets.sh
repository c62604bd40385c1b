#!/usr/bin/env bash
# Runs scripts/convert_maf_datasets.py on small files laid out like the standard MAF download
# (POWER and MINIBOONE .npy, the GAS pandas pickle, the HEPMASS CSV files, the BSDS300 HDF5
# file), checks the preprocessing the script promises on each, and checks that nfcal's loader
# reads the splits it writes (nfcal run --dataset NAME --data-dir).
# Skipped (with a message, exit 0) when no python3 has numpy, pandas and h5py.
# Usage: convert_maf_datasets.sh SOURCE_DIR BINARY_DIR NFCAL_CLI
set -euo pipefail

source_dir="$1"
nfcal="$3"
python=""
for candidate in /usr/bin/python3 python3; do
  if "$candidate" -c 'import numpy, pandas, h5py' 2>/dev/null; then
    python="$candidate"
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "convert_maf_datasets: SKIPPED (no python3 with numpy, pandas and h5py;" \
    "scripts/setup.sh installs them)"
  exit 0
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/nfcal-convert-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { printf 'convert_maf_datasets: FAIL: %s\n' "$*" >&2; exit 1; }

# Downloads in the standard layout, with structure the preprocessing must find: columns to
# drop, correlated GAS sensors, background rows and discrete HEPMASS features.
"$python" - <<'PY'
import os
import h5py
import numpy as np
import pandas as pd

rng = np.random.default_rng(11)
for folder in ("power", "gas", "hepmass", "miniboone", "BSDS300"):
    os.makedirs(os.path.join("download", folder))

np.save("download/power/data.npy", rng.normal(size=(2000, 8)))
np.save("download/miniboone/data.npy", rng.normal(size=(1000, 43)) * 3.0 + 1.0)

sensors = rng.normal(size=(1500, 8))
frame = pd.DataFrame(sensors, columns=["s%d" % j for j in range(8)])
frame["copy_of_s2"] = frame["s2"] + 1e-3 * rng.normal(size=1500)
frame["copy_of_s5"] = 2.0 * frame["s5"] + 1e-3 * rng.normal(size=1500)
frame.insert(0, "Time", np.arange(1500.0))
frame.insert(1, "Meth", rng.uniform(size=1500))
frame.insert(2, "Eth", rng.uniform(size=1500))
frame.to_pickle("download/gas/ethylene_CO.pickle")

def hepmass_rows(n, extra_column):
    label = rng.integers(0, 2, size=n).astype(float)
    continuous = rng.normal(size=(n, 21))
    discrete = rng.integers(0, 3, size=(n, 7)).astype(float)
    columns = [label[:, None], continuous[:, :10], discrete, continuous[:, 10:]]
    if extra_column:
        columns.append(rng.normal(size=(n, 1)))
    return np.hstack(columns)

names = ["# label"] + ["f%d" % j for j in range(27)] + ["mass"]
pd.DataFrame(hepmass_rows(1200, False), columns=names).to_csv(
    "download/hepmass/1000_train.csv", index=False)
pd.DataFrame(hepmass_rows(600, True), columns=names + ["extra"]).to_csv(
    "download/hepmass/1000_test.csv", index=False)

with h5py.File("download/BSDS300/BSDS300.hdf5", "w") as f:
    for split, n in (("train", 500), ("validation", 100), ("test", 200)):
        f.create_dataset(split, data=rng.normal(size=(n, 63)))
PY

"$python" "$source_dir/scripts/convert_maf_datasets.py" --download download --out out \
  >convert.log || fail "conversion: $(cat convert.log)"
for name in power gas hepmass miniboone bsds300; do
  grep -q "^$name: train" convert.log || fail "no line for $name in: $(cat convert.log)"
done

"$python" - <<'PY' || fail "the converted splits are not what the preprocessing promises"
import sys
import h5py
import numpy as np
import pandas as pd

def splits(name):
    return [np.load("out/%s/%s.npy" % (name, s)) for s in ("train", "validation", "test")]

def check(condition, what):
    if not condition:
        sys.exit("convert_maf_datasets: " + what)

for name, width, rows in (("power", 6, (1620, 180, 200)), ("gas", 8, (1215, 135, 150)),
                          ("miniboone", 43, (810, 90, 100)), ("bsds300", 63, (500, 100, 200))):
    parts = splits(name)
    check(all(p.dtype == np.float32 and p.flags.c_contiguous for p in parts),
          name + ": not C-order float32")
    check(tuple(p.shape[0] for p in parts) == rows,
          "%s: split sizes %s, expected %s" % (name, [p.shape[0] for p in parts], rows))
    check(all(p.shape[1] == width for p in parts), "%s: width is not %d" % (name, width))

# POWER and MINIBOONE are standardized by train + validation together.
for name in ("power", "miniboone"):
    both = np.vstack(splits(name)[:2]).astype(np.float64)
    check(np.allclose(both.mean(axis=0), 0.0, atol=1e-5), name + ": mean is not 0")
    check(np.allclose(both.std(axis=0), 1.0, atol=1e-5), name + ": std is not 1")

# GAS keeps one of each correlated pair and standardizes every row with ddof 1; the splits
# keep the file's row order, so the test rows are the last ones of the standardized frame.
frame = pd.read_pickle("download/gas/ethylene_CO.pickle").drop(columns=["Meth", "Eth", "Time"])
kept = frame[["s0", "s1", "s3", "s4", "s6", "s7", "copy_of_s2", "copy_of_s5"]]
expected = ((kept - kept.mean()) / kept.std()).to_numpy()
gas = np.vstack(splits("gas"))
check(np.allclose(gas, expected, atol=1e-5), "gas: not the decorrelated, standardized sensors")

# HEPMASS keeps signal rows, drops the discrete features and the test file's extra column,
# and standardizes both files by the training rows.
train = pd.read_csv("download/hepmass/1000_train.csv").to_numpy()
test = pd.read_csv("download/hepmass/1000_test.csv").to_numpy()
keep = list(range(1, 11)) + list(range(18, 29))
signal_train = train[train[:, 0] == 1][:, keep]
signal_test = test[test[:, 0] == 1][:, keep]
mean, std = signal_train.mean(axis=0), signal_train.std(axis=0, ddof=1)
h_train, h_validation, h_test = splits("hepmass")
check(h_train.shape[1] == 21, "hepmass: %d columns, expected 21" % h_train.shape[1])
check(np.allclose(np.vstack((h_train, h_validation)), (signal_train - mean) / std, atol=1e-5),
      "hepmass: training rows differ")
check(np.allclose(h_test, (signal_test - mean) / std, atol=1e-5), "hepmass: test rows differ")

with h5py.File("download/BSDS300/BSDS300.hdf5", "r") as f:
    check(np.allclose(splits("bsds300")[2], f["test"][:], atol=1e-6), "bsds300: test rows differ")
PY

# nfcal reads what the script wrote: a one-epoch run on POWER through the dataset loader.
"$nfcal" run --dataset power --data-dir out/power --out run --layers 1 --hidden 8 --epochs 1 \
  --trees 5 --log-z-samples 1000 --samples 100 --no-plots --quiet >/dev/null 2>run.err ||
  fail "nfcal run on the converted POWER splits: $(cat run.err)"
[[ -s run/metrics.json ]] || fail "nfcal run wrote no metrics.json"

# A folder without any download is an error that names it, not a silent success.
if "$python" "$source_dir/scripts/convert_maf_datasets.py" --download empty --out out2 \
  2>missing.err; then
  fail "a folder with no dataset files was accepted"
fi
grep -q "no dataset files found in empty" missing.err || fail "unclear error: $(cat missing.err)"

echo "convert_maf_datasets: all cases passed"
