#!/usr/bin/env python3
"""Convert the MAF paper's density-estimation datasets into .npy splits nfcal reads.

Usage:
  convert_maf_datasets.py --download DIR [--out DIR] [NAME ...]

DIR is the unpacked standard download of Papamakarios, Pavlakou and Murray (2017), "Masked
Autoregressive Flow for Density Estimation" (the data archive linked from the paper's code,
github.com/gpapamak/maf), with the layout

  power/data.npy                   gas/ethylene_CO.pickle
  hepmass/1000_train.csv           hepmass/1000_test.csv
  miniboone/data.npy               BSDS300/BSDS300.hdf5

NAME is any of power, gas, hepmass, miniboone, bsds300 (default: every set whose files are
present). For each set the script applies the paper's published preprocessing and splits and
writes OUT/NAME/{train,validation,test}.npy as float32; OUT defaults to the folder nfcal reads
from ($NFCAL_MAF_DATA_DIR, else $XDG_DATA_HOME/nfcal/maf, else ~/.local/share/nfcal/maf).
docs/datasets.md describes every step. GAS needs pandas, BSDS300 needs h5py, HEPMASS needs
pandas; POWER and MINIBOONE need only NumPy.
"""

import argparse
import os
import sys
from collections import Counter

import numpy as np

NAMES = ("power", "gas", "hepmass", "miniboone", "bsds300")
WIDTHS = {"power": 6, "gas": 8, "hepmass": 21, "miniboone": 43, "bsds300": 63}


def default_out():
    if os.environ.get("NFCAL_MAF_DATA_DIR"):
        return os.environ["NFCAL_MAF_DATA_DIR"]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return os.path.join(base, "nfcal", "maf")


def split_tail(data, fraction=0.1):
    """The last `fraction` of the rows, and the rows before them."""
    n_tail = int(fraction * data.shape[0])
    return data[:-n_tail], data[-n_tail:]


def power(download):
    """POWER: shuffle with seed 42, drop the global reactive power and the global intensity
    (columns 1 and 3), add uniform noise to break ties of the rounded readings, split
    test = last 10%, validation = last 10% of the rest, and standardize by the mean and
    standard deviation of train + validation."""
    rng = np.random.RandomState(42)
    data = np.load(os.path.join(download, "power", "data.npy"))
    rng.shuffle(data)
    n = data.shape[0]
    data = np.delete(data, 3, axis=1)
    data = np.delete(data, 1, axis=1)
    # Noise in the order the published code draws it: voltage, global active power, sub
    # metering, and none for the time column.
    voltage_noise = 0.01 * rng.rand(n, 1)
    gap_noise = 0.001 * rng.rand(n, 1)
    sm_noise = rng.rand(n, 3)
    time_noise = np.zeros((n, 1))
    data = data + np.hstack((gap_noise, voltage_noise, sm_noise, time_noise))
    rest, test = split_tail(data)
    train, validation = split_tail(rest)
    both = np.vstack((train, validation))
    mu, s = both.mean(axis=0), both.std(axis=0)
    return (train - mu) / s, (validation - mu) / s, (test - mu) / s


def gas_correlations(frame):
    """Per column, how many columns (itself included) it correlates with above 0.98."""
    return (frame.corr() > 0.98).to_numpy().sum(axis=1)


def gas(download):
    """GAS (ethylene and CO): drop the Meth, Eth and Time columns, then repeatedly drop the
    first column that correlates above 0.98 with another, standardize every column (pandas
    standard deviation, ddof 1), and split test = last 10%, validation = last 10% of the
    rest."""
    import pandas as pd

    frame = pd.read_pickle(os.path.join(download, "gas", "ethylene_CO.pickle"))
    frame = frame.drop(columns=["Meth", "Eth", "Time"])
    counts = gas_correlations(frame)
    while np.any(counts > 1):
        frame = frame.drop(columns=frame.columns[np.where(counts > 1)[0][0]])
        counts = gas_correlations(frame)
    frame = (frame - frame.mean()) / frame.std()
    rest, test = split_tail(frame.to_numpy())
    train, validation = split_tail(rest)
    return train, validation, test


def repeated_value_features(data):
    """Columns whose smallest value occurs more than 5 times: the published rule, which reads
    the count of the smallest value (its comment speaks of the most frequent one)."""
    remove = []
    for j, column in enumerate(data.T):
        counts = Counter(column)
        if counts[min(counts)] > 5:
            remove.append(j)
    return remove


def hepmass(download):
    """HEPMASS: keep the signal rows (label 1) of the 1000 GeV files, drop the label (and the
    test file's extra last column), standardize by the training rows' mean and standard
    deviation (ddof 1), drop the columns whose smallest value repeats more than 5 times in the
    training rows (the 5 discrete features), and split validation = last 10% of train."""
    import pandas as pd

    train = pd.read_csv(os.path.join(download, "hepmass", "1000_train.csv"), index_col=False)
    test = pd.read_csv(os.path.join(download, "hepmass", "1000_test.csv"), index_col=False)
    # Each file's first column is its label; the test file carries one more column at the end.
    train = train[train[train.columns[0]] == 1]
    train = train.drop(train.columns[0], axis=1)
    test = test[test[test.columns[0]] == 1]
    test = test.drop(test.columns[0], axis=1)
    test = test.drop(test.columns[-1], axis=1)
    mu, s = train.mean(), train.std()
    train, test = ((train - mu) / s).to_numpy(), ((test - mu) / s).to_numpy()
    keep = [j for j in range(train.shape[1]) if j not in repeated_value_features(train)]
    train, test = train[:, keep], test[:, keep]
    train, validation = split_tail(train)
    return train, validation, test


def miniboone(download):
    """MINIBOONE: the download's data.npy already has the outliers (rows with a first value
    below -100) and the repeated-value columns removed; split test = last 10%, validation =
    last 10% of the rest, and standardize by the mean and standard deviation of train +
    validation."""
    data = np.load(os.path.join(download, "miniboone", "data.npy"))
    rest, test = split_tail(data)
    train, validation = split_tail(rest)
    both = np.vstack((train, validation))
    mu, s = both.mean(axis=0), both.std(axis=0)
    return (train - mu) / s, (validation - mu) / s, (test - mu) / s


def bsds300(download):
    """BSDS300: the HDF5 file's train, validation and test datasets as they are (8 x 8 patches
    with the mean removed and one pixel dropped, 63 values)."""
    import h5py

    with h5py.File(os.path.join(download, "BSDS300", "BSDS300.hdf5"), "r") as f:
        return f["train"][:], f["validation"][:], f["test"][:]


LOADERS = {"power": power, "gas": gas, "hepmass": hepmass, "miniboone": miniboone,
           "bsds300": bsds300}
FILES = {"power": ["power/data.npy"], "gas": ["gas/ethylene_CO.pickle"],
         "hepmass": ["hepmass/1000_train.csv", "hepmass/1000_test.csv"],
         "miniboone": ["miniboone/data.npy"], "bsds300": ["BSDS300/BSDS300.hdf5"]}


def save_atomically(path, array):
    temporary = path + ".tmp.npy"
    np.save(temporary, array)
    os.replace(temporary, path)


def convert(name, download, out):
    """Runs one set's preprocessing and writes its three splits."""
    splits = LOADERS[name](download)
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    for split, array in zip(("train", "validation", "test"), splits):
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != WIDTHS[name]:
            raise ValueError("%s %s: shape %s, expected %d columns"
                             % (name, split, array.shape, WIDTHS[name]))
        save_atomically(os.path.join(folder, split + ".npy"), array)
    print("%s: train %d, validation %d, test %d rows of %d -> %s"
          % (name, len(splits[0]), len(splits[1]), len(splits[2]), WIDTHS[name], folder))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--download", required=True, help="the unpacked MAF data folder")
    parser.add_argument("--out", default=default_out(), help="where the splits go")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="sets to convert, among %s (default: those present)"
                        % ", ".join(NAMES))
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        parser.error("unknown dataset %s; choose among %s" % (unknown[0], ", ".join(NAMES)))
    present = [n for n in NAMES
               if all(os.path.exists(os.path.join(args.download, f)) for f in FILES[n])]
    names = args.names or present
    if not names:
        sys.stderr.write("convert_maf_datasets.py: no dataset files found in %s\n"
                         % args.download)
        return 1
    for name in names:
        missing = [f for f in FILES[name] if not os.path.exists(os.path.join(args.download, f))]
        if missing:
            sys.stderr.write("convert_maf_datasets.py: %s: missing %s\n"
                             % (name, ", ".join(os.path.join(args.download, f)
                                                for f in missing)))
            return 1
        try:
            convert(name, args.download, args.out)
        except ImportError as error:
            sys.stderr.write("convert_maf_datasets.py: %s needs %s (apt-get install "
                             "python3-pandas python3-h5py)\n" % (name, error.name))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
