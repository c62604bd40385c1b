#!/usr/bin/python3
"""Reads the JSON files scripts/compare.sh wrote into one folder and prints Markdown tables:
the ratios nfcal / baseline for the five compared quantities, the per-size rows, and the
equal-work checks, each labelled with the device each side ran on (files without a "device"
field ran on the CPU). Usage: compare_table.py FOLDER"""

import json
import os
import re
import sys


def load(folder, name):
    with open(os.path.join(folder, name)) as handle:
        return json.load(handle)


def bench_rows(bench):
    """nfcal_bench results by name, items per second."""
    return {row["name"]: row.get("items_per_second") for row in bench["benchmarks"]}


def bench_rate(rows, kind, dim, hidden):
    return rows.get("BM_Maf%s/D:%d/hidden:%d/real_time" % (kind, dim, hidden))


# nfcal_bench's GPU rows are named BM_CudaMaf<kind>/D/hidden/log2_rows/variant/manual_time.
GPU_ROW = re.compile(r"BM_CudaMaf(\w+)/(\d+)/(\d+)/(\d+)/(\d+)/manual_time")


def gpu_bench_rate(rows, kind, dim, hidden, variant=0):
    for name, rate in rows.items():
        match = GPU_ROW.fullmatch(name)
        if match and match.group(1) == kind and rate is not None and (
                int(match.group(2)), int(match.group(3)), int(match.group(5))) == (
                dim, hidden, variant):
            return rate
    return None


def gpu_bench_rates(rows, dim, hidden):
    """Density (the fused kernel where the model fits it, as CudaMaf chooses, else the
    general path), degree-ordered sampling and training-epoch rows/s of the GPU rows."""
    density = gpu_bench_rate(rows, "LogProb", dim, hidden, 0)
    if density is None:
        density = gpu_bench_rate(rows, "LogProb", dim, hidden, 1)
    return (density, gpu_bench_rate(rows, "Sample", dim, hidden),
            gpu_bench_rate(rows, "TrainEpoch", dim, hidden))


def device_of(result):
    return result.get("device", "cpu")


def fmt(value, digits=3):
    """A rate or time with about `digits` significant figures and thousands separators."""
    if value is None:
        return "n/a"
    if value >= 100:
        return "{:,.0f}".format(value)
    return "{:.{}g}".format(value, digits)


def ratio(a, b):
    return "n/a" if a is None or b is None or b == 0 else "%.2f" % (a / b)


def gap_closed(flow, calibrated, truth):
    """The share of the flow's distance to the true density that calibration recovered."""
    return "%.0f%%" % (100.0 * (calibrated - flow) / (truth - flow)) if truth != flow else "n/a"


def print_quality(folder, data, baseline):
    """Both calibrations of the same trained flow on the same rows, against the truth."""
    path = os.path.join(folder, "nfcal-quality.json")
    if not os.path.exists(path):
        return
    quality = load(folder, "nfcal-quality.json")
    calibration = baseline["calibration"]
    truth = data["true_test_log_likelihood"]
    flow = calibration["flow_test_log_likelihood"]
    print("## Calibration of the same flow\n")
    print("The baseline's trained flow, calibrated on the same %d training rows by each side: "
          "the baseline with %d trees of depth 6, one flow row per data row and ceiling log 2 "
          "(on %s); nfcal with `calibrate()`'s defaults (%.0f flow rows per data row, trees and "
          "ceiling chosen on held-out rows: %d trees, L = %.2f; on %s, in %.1f s). Test "
          "log-likelihood in nats; truth %.3f.\n" % (
              data["train_rows"], calibration["trees"], device_of(baseline),
              quality["flow_ratio"], quality["trees_kept"], quality["ceiling"],
              device_of(quality), quality["seconds"], truth))
    print("| model | test log-likelihood | gap to the truth closed | acceptance |")
    print("|---|---|---|---|")
    print("| flow (both sides) | %.3f | | |" % flow)
    baseline = calibration["calibrated_test_log_likelihood"]
    print("| baseline calibrated | %.3f | %s | %.1f%% |" % (
        baseline, gap_closed(flow, baseline, truth), 100 * calibration["acceptance"]))
    ours = quality["calibrated_test_log_likelihood"]
    print("| nfcal calibrated | %.3f | %s | %.1f%% (predicted) |" % (
        ours, gap_closed(quality["flow_test_log_likelihood"], ours, truth),
        100 * quality["acceptance_predicted"]))
    # The exact density ratio in place of a classifier: the most either side could reach.
    for key, ceiling in (("exact_ratio_log2_test_log_likelihood", "log 2"),
                         ("exact_ratio_test_log_likelihood", "nfcal's L")):
        if key in quality:
            print("| exact density ratio, ceiling %s | %.3f | %s | |" % (
                ceiling, quality[key], gap_closed(flow, quality[key], truth)))
    print()


def print_by_size(baseline, rows, on_gpu):
    """nfcal_bench's rows (random weights) next to the baseline's for each size."""
    device = device_of(baseline)
    print("## nfcal / baseline by size (nfcal_bench rows, random weights)\n")
    if on_gpu:
        print("nfcal: nfcal_bench's GPU rows (density over 2^24 rows, or 2^22 where the fused "
              "kernel does not fit, sampling over 2^24 rows, training epochs of 2^18 rows in "
              "minibatches of 512 with the Adam step; at most 1 GiB of rows). Baseline on %s: "
              "density over the batch in brackets, training steps of 512 rows.\n" % device)
    print("| D, hidden | density nfcal | density baseline | ratio | sampling nfcal "
          "| sampling baseline (batch) | ratio | training nfcal | training baseline | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in baseline["sizes"]:
        dim, hidden = size["dim"], size["hidden"]
        if on_gpu:
            density, sampling, training = gpu_bench_rates(rows, dim, hidden)
        else:
            density = bench_rate(rows, "LogProb", dim, hidden)
            sampling = bench_rate(rows, "SampleDegreeOrdered", dim, hidden)
            training = bench_rate(rows, "TrainStep", dim, hidden)
        density_baseline = fmt(size["density_rows_per_s"])
        if "density_batch" in size:
            density_baseline += " (%d)" % size["density_batch"]
        print("| %d, %d | %s | %s | %s | %s | %s (%d) | %s | %s | %s | %s |" % (
            dim, hidden, fmt(density), density_baseline,
            ratio(density, size["density_rows_per_s"]), fmt(sampling),
            fmt(size["sampling_rows_per_s"]), size["sampling_batch"],
            ratio(sampling, size["sampling_rows_per_s"]), fmt(training),
            fmt(size["training_rows_per_s"]), ratio(training, size["training_rows_per_s"])))
    print()
    if on_gpu:
        print("nfcal_bench's own GPU calibration rows (its own flow and classifier, 2^20 rows): "
              "margins with 100 trees %s rows/s, with 2,000 trees %s rows/s; calibrated "
              "sampling with 500 trees %s samples/s." % (
                  fmt(rows.get("BM_CudaXGBoostMargins/100/20/manual_time")),
                  fmt(rows.get("BM_CudaXGBoostMargins/2000/20/manual_time")),
                  fmt(rows.get("BM_CudaCalibratedSampling/20/manual_time"))))
    else:
        margins = rows.get("BM_XGBoostMargins/500/real_time")
        calibrated = rows.get("BM_CalibratedSampling/100000/real_time")
        print("nfcal_bench's own calibration rows (its own flow and classifier): margins with "
              "500 trees %s rows/s, calibrated sampling %s samples/s." % (
                  fmt(margins), fmt(calibrated)))
    print()


def main():
    folder = sys.argv[1]
    baseline = load(folder, "baseline.json")
    calibration = baseline["calibration"]
    nfcal_train = load(folder, "nfcal-train.json")
    nfcal_cal = load(folder, "nfcal-calibrated.json")
    rows = bench_rows(load(folder, "nfcal-bench.json"))
    data = load(folder, "data.json")
    checks = [json.loads(line) for line in open(os.path.join(folder, "checks.jsonl")) if line]
    ours_on, theirs_on = device_of(nfcal_cal), device_of(baseline)
    on_gpu = ours_on != "cpu"

    print("## nfcal / baseline, calibration workload\n")
    where = "nfcal on %s, the baseline on %s" % (ours_on, theirs_on)
    if "gpu" in baseline:
        where += " (%s)" % baseline["gpu"]["name"]
    print("Same flow weights and the same XGBoost model on both sides; %s; %d threads.\n"
          % (where, baseline["threads"]))
    print("| quantity | nfcal (%s) | baseline (%s) | nfcal / baseline |" % (ours_on, theirs_on))
    print("|---|---|---|---|")
    quantities = [
        ("density rows/s", nfcal_cal["density_rows_per_s"], calibration["density_rows_per_s"]),
        ("flow sampling rows/s", nfcal_cal["flow_sampling_rows_per_s"],
         calibration["flow_sampling_rows_per_s"]),
        ("classifier margin rows/s", nfcal_cal["margin_rows_per_s"],
         calibration["margin_rows_per_s"]),
        ("calibrated samples/s end to end", nfcal_cal["calibrated_samples_per_s"],
         calibration["calibrated_samples_per_s"]),
        ("flow training time to validation LL %.2f, s (lower is better)"
         % nfcal_train["target"], nfcal_train["seconds"], calibration["training"]["seconds"]),
    ]
    for name, ours, theirs in quantities:
        print("| %s | %s | %s | %s |" % (name, fmt(ours), fmt(theirs), ratio(ours, theirs)))
    print()
    print("Acceptance at ceiling log 2: nfcal %.3f, baseline %.3f. Training epochs to the "
          "target: nfcal %s, baseline %s." % (
              nfcal_cal["acceptance"], calibration["acceptance"], nfcal_train["epochs"],
              calibration["training"]["epochs"]))
    print()
    if on_gpu:
        inputs = {"cuda_array": "from the flow's device tensors through CuPy",
                  "host_copy": "through host copies of the rows (CuPy is not installed)"}
        print("On the GPU both sides keep the flow, the classifier and the rows in device "
              "memory and wait for the device before reading the clock. Rows per call: "
              "density and margins %s, flow sampling %s (nfcal) and %s (baseline); "
              "calibrated samples %s per run, the baseline in rounds of at most %s "
              "candidates. The baseline's XGBoost scores rows %s. nfcal's one-call entry "
              "points, which copy the model and the rows on every call: density %s rows/s, "
              "sampling %s rows/s (`nfcal::log_prob`, `nfcal::sample`), calibrated sampling "
              "%s samples/s (`sample_calibrated`).\n" % (
                  fmt(calibration.get("margin_rows")), fmt(nfcal_cal["flow_sampling_batch"]),
                  fmt(calibration["flow_sampling_batch"]), fmt(nfcal_cal.get("samples")),
                  fmt(calibration.get("max_round")),
                  inputs.get(calibration.get("xgboost_input"), "(not recorded)"),
                  fmt(nfcal_cal.get("density_rows_per_s_api")),
                  fmt(nfcal_cal.get("flow_sampling_rows_per_s_api")),
                  fmt(nfcal_cal.get("calibrated_samples_per_s_api"))))
    print_quality(folder, data, baseline)
    print_by_size(baseline, rows, on_gpu)

    print("## Equal work: the baseline's flows loaded into nfcal\n")
    print("| flow | D | hidden | rows | max abs diff (float64) | max abs diff (float32) |")
    print("|---|---|---|---|---|---|")
    for check in checks:
        print("| %s | %d | %d | %d | %.2e | %.2e |" % (
            os.path.basename(check["flow"]), check["dim"], check["hidden"], check["rows"],
            check["max_abs_diff_float64"], check["max_abs_diff_float32"]))
    print()
    print("BLAS: %s" % ", ".join("%s %s (%s)" % (b.get("internal_api"), b.get("version"),
                                                 b.get("architecture"))
                                 for b in baseline.get("blas") or [] if b.get("version")))
    if "gpu" in baseline:
        gpu = baseline["gpu"]
        print()
        print("GPU: %s; baseline: PyTorch %s (CUDA %s), XGBoost %s" % (
            gpu["name"], baseline["torch"], gpu["torch_cuda"], baseline["xgboost"]))


if __name__ == "__main__":
    main()
