#!/usr/bin/env python3
"""Pictures for an nfcal run folder, drawn with matplotlib.

Usage: plot_report.py RUN_FOLDER

Reads RUN_FOLDER/plot_spec.json, written by `nfcal run` and `nfcal demo`, and the .npy files it
names, and writes PNG files into the same folder:

  2-D data     density.png  the flow's and the calibrated model's densities side by side
                            (and the true density when it is known), on one colour scale;
               samples.png  test rows, flow samples and calibrated samples.
  more columns marginals.png  histograms of every column (at most 8) for the three sets;
               pairs.png      scatter plots of a few pairs of columns.
  images       samples.png  a grid of test images, flow samples and calibrated samples.
  one set      the file the spec names: the rows of one sample alone (kind "sample").

Prints one "wrote NAME" line per picture. Each file is written to a temporary name and
renamed, so a failed run leaves no partial picture. Exits 1 with a message on failure.
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MAX_SCATTER = 5000
MAX_MARGINALS = 8
PAIRS = 3
COLOURS = {"data": "#333333", "flow": "#d95f02", "calibrated": "#1b9e77"}
LABELS = {"data": "test data", "flow": "flow (MAF)", "calibrated": "calibrated"}


def save(figure, folder, name):
    """Writes the figure atomically and reports its name."""
    final = os.path.join(folder, name)
    temporary = os.path.join(folder, "." + name + ".tmp.png")
    try:
        figure.savefig(temporary, dpi=120, bbox_inches="tight")
        os.replace(temporary, final)
    finally:
        plt.close(figure)
        if os.path.exists(temporary):
            os.remove(temporary)
    print("wrote " + name, flush=True)


def load(folder, name):
    return np.load(os.path.join(folder, name))


def sample_sets(folder, spec):
    """The three sets of rows the pictures compare, at most MAX_SCATTER rows each."""
    return {key: load(folder, spec[key])[:MAX_SCATTER] for key in ("data", "flow", "calibrated")}


def column_name(spec, j):
    columns = spec.get("columns") or []
    return columns[j] if j < len(columns) else "x%d" % j


def plot_densities(folder, spec):
    """Flow and calibrated densities (and the truth) as images with a shared colour scale."""
    grid = spec["grid"]
    x_min, x_max, y_min, y_max = grid["extent"]
    panels = []
    if "true" in grid:
        panels.append(("true density", load(folder, grid["true"])))
    panels.append(("flow (MAF)", load(folder, grid["flow"])))
    panels.append(("calibrated: flow + classifier", load(folder, grid["calibrated"])))
    densities = [(title, np.exp(np.clip(values, -50, 50))) for title, values in panels]
    top = max(np.percentile(d, 99.9) for _, d in densities)

    figure, axes = plt.subplots(1, len(densities), figsize=(4.2 * len(densities), 4.2))
    for axis, (title, density) in zip(np.atleast_1d(axes), densities):
        axis.imshow(density, origin="lower", extent=(x_min, x_max, y_min, y_max),
                    cmap="magma", vmin=0, vmax=top, aspect="auto", interpolation="bilinear")
        axis.set_title(title)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("%s: density" % spec.get("title", ""), y=1.02)
    save(figure, folder, "density.png")


def plot_samples_2d(folder, spec):
    """Scatter plots of test rows and of both models' samples on the density grid's axes."""
    sets = sample_sets(folder, spec)
    x_min, x_max, y_min, y_max = spec["grid"]["extent"]
    figure, axes = plt.subplots(1, 3, figsize=(12.6, 4.2), sharex=True, sharey=True)
    for axis, key in zip(axes, ("data", "flow", "calibrated")):
        rows = sets[key]
        axis.scatter(rows[:, 0], rows[:, 1], s=2, alpha=0.5, color=COLOURS[key], linewidths=0)
        axis.set_title("%s (%d)" % (LABELS[key], len(rows)))
        axis.set_xlim(x_min, x_max)
        axis.set_ylim(y_min, y_max)
    figure.suptitle("%s: samples" % spec.get("title", ""), y=1.02)
    save(figure, folder, "samples.png")


def plot_marginals(folder, spec):
    """One histogram per column for the three sets, on shared bins."""
    sets = sample_sets(folder, spec)
    dims = min(sets["data"].shape[1], MAX_MARGINALS)
    cols = min(dims, 4)
    rows = (dims + cols - 1) // cols
    figure, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for j in range(rows * cols):
        axis = axes[j // cols][j % cols]
        if j >= dims:
            axis.axis("off")
            continue
        low, high = np.percentile(sets["data"][:, j], [0.5, 99.5])
        span = max(high - low, 1e-6)
        bins = np.linspace(low - 0.1 * span, high + 0.1 * span, 50)
        for key in ("data", "flow", "calibrated"):
            axis.hist(sets[key][:, j], bins=bins, density=True, histtype="step",
                      color=COLOURS[key], label=LABELS[key], linewidth=1.3)
        axis.set_title(column_name(spec, j))
        axis.set_yticks([])
    axes[0][0].legend(fontsize="small")
    figure.suptitle("%s: marginals" % spec.get("title", ""), y=1.02)
    figure.tight_layout()
    save(figure, folder, "marginals.png")


def plot_pairs(folder, spec):
    """Scatter plots of a few column pairs, one row per pair, one column per set."""
    sets = sample_sets(folder, spec)
    dims = sets["data"].shape[1]
    pairs = [(2 * k, 2 * k + 1) for k in range(min(PAIRS, dims // 2))]
    figure, axes = plt.subplots(len(pairs), 3, figsize=(11, 3.5 * len(pairs)), squeeze=False)
    for p, (a, b) in enumerate(pairs):
        limits = [np.percentile(sets["data"][:, c], [0.5, 99.5]) for c in (a, b)]
        for k, key in enumerate(("data", "flow", "calibrated")):
            axis = axes[p][k]
            rows = sets[key]
            axis.scatter(rows[:, a], rows[:, b], s=2, alpha=0.4, color=COLOURS[key],
                         linewidths=0)
            axis.set_xlim(*limits[0])
            axis.set_ylim(*limits[1])
            axis.set_xlabel(column_name(spec, a))
            axis.set_ylabel(column_name(spec, b))
            if p == 0:
                axis.set_title(LABELS[key])
    figure.suptitle("%s: pairs of columns" % spec.get("title", ""), y=1.01)
    figure.tight_layout()
    save(figure, folder, "pairs.png")


def image_grid(images, height, width, side):
    """side x side images tiled into one array, one pixel of gap between them."""
    canvas = np.ones((side * (height + 1) - 1, side * (width + 1) - 1))
    for i in range(min(len(images), side * side)):
        r, c = divmod(i, side)
        canvas[r * (height + 1):r * (height + 1) + height,
               c * (width + 1):c * (width + 1) + width] = images[i].reshape(height, width)
    return canvas


def plot_images(folder, spec):
    """Grids of test images and samples of both models, as intensities in [0, 1]."""
    info = spec["images"]
    height, width = info["shape"]
    figure, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    for axis, key in zip(axes, ("data", "flow", "calibrated")):
        images = load(folder, info[key])
        side = int(np.floor(np.sqrt(len(images))))
        axis.set_title(LABELS[key])
        axis.axis("off")
        if side == 0:  # the sampler stopped before it had any rows
            axis.text(0.5, 0.5, "no samples", ha="center", va="center")
            continue
        axis.imshow(image_grid(images, height, width, side), cmap="gray_r", vmin=0, vmax=1,
                    interpolation="nearest")
    figure.suptitle("%s: samples" % spec.get("title", ""), y=1.0)
    save(figure, folder, "samples.png")


def plot_sample(folder, spec):
    """One set of rows alone: a histogram per column on the diagonal and scatter plots of
    pairs below it, for the first few columns (the picture `nfcal sample --plot` asks for)."""
    rows = load(folder, spec["samples"])
    rows = rows.reshape(len(rows), -1)
    dims = min(rows.shape[1], 4)
    scatter = rows[:MAX_SCATTER]
    colour = COLOURS.get(spec.get("set", "calibrated"), COLOURS["calibrated"])
    size = 2.6 if dims > 1 else 4.0
    figure, axes = plt.subplots(dims, dims, figsize=(size * dims, size * dims), squeeze=False)
    limits = []
    for j in range(dims):
        low, high = np.percentile(rows[:, j], [0.5, 99.5])
        span = max(high - low, 1e-6)
        limits.append((low - 0.05 * span, high + 0.05 * span))
    for a in range(dims):
        for b in range(dims):
            axis = axes[a][b]
            if b > a:
                axis.axis("off")
            elif a == b:
                axis.hist(rows[:, a], bins=np.linspace(*limits[a], 60), density=True,
                          color=colour, alpha=0.8)
                axis.set_xlim(*limits[a])
                axis.set_yticks([])
            else:
                axis.scatter(scatter[:, b], scatter[:, a], s=2, alpha=0.4, color=colour,
                             linewidths=0)
                axis.set_xlim(*limits[b])
                axis.set_ylim(*limits[a])
            if a == dims - 1:
                axis.set_xlabel(column_name(spec, b))
            if b == 0 and a > 0:
                axis.set_ylabel(column_name(spec, a))
    shown = "" if rows.shape[1] <= dims else ", first %d of %d columns" % (dims, rows.shape[1])
    figure.suptitle("%s: %d samples%s" % (spec.get("title", ""), len(rows), shown), y=1.01)
    figure.tight_layout()
    save(figure, folder, spec.get("out", "samples.png"))


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: plot_report.py RUN_FOLDER\n")
        return 2
    folder = argv[1]
    try:
        with open(os.path.join(folder, "plot_spec.json")) as handle:
            spec = json.load(handle)
        kind = spec["kind"]
        if kind == "2d":
            plot_densities(folder, spec)
            plot_samples_2d(folder, spec)
        elif kind == "image":
            plot_images(folder, spec)
        elif kind == "sample":
            plot_sample(folder, spec)
        else:
            plot_marginals(folder, spec)
            if spec["dim"] >= 2:
                plot_pairs(folder, spec)
    except Exception as error:  # one clear line for the report, whatever went wrong
        sys.stderr.write("plot_report.py: %s: %s\n" % (type(error).__name__, error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
