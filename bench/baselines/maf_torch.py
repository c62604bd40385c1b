#!/usr/bin/python3
"""The nfcal workload in the stack researchers use today: a PyTorch MAF, XGBoost's Python
package and a NumPy rejection loop. Prints one JSON object with the measurements.

The MAF has the common structure: MADE blocks of masked linear layers (2 hidden layers each,
ReLU), 5 blocks with the order reversed between them, a standard normal base, and sampling by
D full network passes per block. To make the comparison one of equal work, the masks, the
output parameterization and the tensor layout are nfcal's:

- input position k (0-based, in the block's order) has degree k + 1; hidden unit h of H has
  degree 1 + floor(h * (D - 1) / H), non-decreasing in h; a hidden unit reads inputs and
  units of degree <= its own; output k reads hidden units of degree < k + 1;
- the output layer has 2D rows: rows 0..D-1 are mu, rows D..2D-1 the raw log-scale, and
  alpha = B * tanh(raw / B) with B = 6; u = (y - mu) * exp(-alpha) in the block's order;
- block 0 uses the identity order, every later block reverses the previous one;
- optional standardization z = (x - shift) / scale with its log-determinant.

--export DIR writes each measured flow as DIR/<name>/ (config.json, one .npy per tensor with
nfcal's tensor names, rows.npy and the float64 log densities of those rows), so nfcal can
load the same weights and show that it computes the same densities.

Workload (the benchmark sizes): density, sampling and training-step rows/s for each --sizes entry;
then the calibration workload on --data (train.npy, validation.npy, test.npy): flow training
time to --target validation log-likelihood, flow sampling rows/s, a classifier of 500 trees
of depth 6, its margin rows/s, and calibrated samples/s end to end with ceiling log 2.

--device cuda[:N] runs it on a GPU: the flow and its tensors on the device, XGBoost trained
and predicting with device=cuda (tree method hist, XGBoost 2.0 or later built with CUDA), the
rejection loop in torch on the device, and larger batches (the GPU defaults below) so that the
device is busy. Timed regions start and end with torch.cuda.synchronize() after a warm-up.
XGBoost's Python package reads rows in device memory only through CuPy: with CuPy installed
the margins are computed from the flow's device tensors directly, without it the rows take a
round trip through host memory ("xgboost_input" in the output says which).
"""

import argparse
import copy
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import xgboost as xgb

MAX_LOG_SCALE = 6.0
LOG_TWO_PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------
# The flow


def hidden_degrees(dim, hidden):
    """Degrees of hidden units, spread evenly over 1..max(D-1, 1) and sorted."""
    max_degree = max(dim - 1, 1)
    return [1 + (h * max_degree) // hidden for h in range(hidden)]


class MaskedLinear(torch.nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask."""

    def __init__(self, mask):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask)

    def forward(self, x):
        return torch.nn.functional.linear(x, self.weight * self.mask, self.bias)


class Made(torch.nn.Module):
    """One MADE block: maps y (in the block's order) to (mu, raw log-scale)."""

    def __init__(self, dim, hidden, hidden_layers, order):
        super().__init__()
        degrees = torch.tensor(hidden_degrees(dim, hidden))
        inputs = torch.arange(1, dim + 1)
        layers = []
        for index in range(hidden_layers):
            reads = inputs if index == 0 else degrees
            layers.append(MaskedLinear((degrees[:, None] >= reads[None, :]).float()))
            layers.append(torch.nn.ReLU())
        outputs = torch.cat([inputs, inputs])
        layers.append(MaskedLinear((outputs[:, None] > degrees[None, :]).float()))
        self.net = torch.nn.Sequential(*layers)
        self.dim = dim
        self.degrees = degrees.tolist()
        self.register_buffer("order", torch.tensor(order))
        self.register_buffer("inverse_order", torch.argsort(torch.tensor(order)))

    def masked_layers(self):
        return [m for m in self.net if isinstance(m, MaskedLinear)]


class Maf(torch.nn.Module):
    """A stack of MADE blocks with affine autoregressive steps and a N(0, I) base."""

    def __init__(self, dim, hidden, layers=5, hidden_layers=2):
        super().__init__()
        order = list(range(dim))
        blocks = []
        for index in range(layers):
            if index > 0:
                order = order[::-1]
            blocks.append(Made(dim, hidden, hidden_layers, order))
        self.blocks = torch.nn.ModuleList(blocks)
        self.dim = dim
        self.hidden = hidden
        self.hidden_layers = hidden_layers
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def set_standardization(self, shift, scale):
        self.shift.copy_(torch.as_tensor(shift))
        self.scale.copy_(torch.as_tensor(scale))

    def log_prob(self, x):
        """Log densities of rows x (n, D) in the user's units: one pass per block."""
        z = (x - self.shift) / self.scale
        log_det = -torch.log(self.scale).sum().expand(x.shape[0])
        for block in self.blocks:
            y = z[:, block.order]
            out = block.net(y)
            alpha = MAX_LOG_SCALE * torch.tanh(out[:, self.dim:] / MAX_LOG_SCALE)
            u = (y - out[:, : self.dim]) * torch.exp(-alpha)
            z = u[:, block.inverse_order]
            log_det = log_det - alpha.sum(dim=1)
        return -0.5 * (z * z).sum(dim=1) - 0.5 * self.dim * LOG_TWO_PI + log_det

    @torch.no_grad()
    def inverse(self, z):
        """Base noise z (n, D) to data: D full network passes per block."""
        for block in reversed(self.blocks):
            u = z[:, block.order]
            y = torch.zeros_like(u)
            for k in range(self.dim):
                out = block.net(y)
                alpha = MAX_LOG_SCALE * torch.tanh(out[:, self.dim + k] / MAX_LOG_SCALE)
                y[:, k] = u[:, k] * torch.exp(alpha) + out[:, k]
            z = y[:, block.inverse_order]
        return z * self.scale + self.shift

    def sample(self, n, generator):
        return self.inverse(torch.randn(n, self.dim, generator=generator,
                                        device=self.shift.device))


def initialize(flow, generator, output_range=0.0):
    """nfcal's scheme: masked weights uniform in +-1/sqrt(fan-in), zero biases, and the output
    layer zero (the identity flow) unless output_range asks for random outputs."""
    with torch.no_grad():
        for block in flow.blocks:
            layers = block.masked_layers()
            for index, layer in enumerate(layers):
                fan_in = layer.mask.sum(dim=1).clamp(min=1.0)
                if index + 1 < len(layers):
                    bound = (1.0 / torch.sqrt(fan_in))[:, None]
                else:
                    bound = torch.full((layer.mask.shape[0], 1), output_range)
                noise = torch.rand(layer.weight.shape, generator=generator) * 2.0 - 1.0
                layer.weight.copy_(noise * bound * layer.mask)
                layer.bias.zero_()


def export_flow(flow, directory, rows):
    """Writes the flow in nfcal's tensor layout and the float64 log densities of rows."""
    os.makedirs(directory, exist_ok=True)
    tensors = []
    for index, block in enumerate(flow.blocks):
        prefix = "layer%d.made." % index
        layers = block.masked_layers()
        for position, layer in enumerate(layers):
            name = "output" if position + 1 == len(layers) else "hidden%d" % position
            weight = (layer.weight * layer.mask).detach().cpu().double().numpy()
            bias = layer.bias.detach().cpu().double().numpy()
            for suffix, value in (("weight", weight), ("bias", bias.reshape(-1, 1))):
                tensors.append({"name": prefix + name + "." + suffix,
                                "rows": value.shape[0], "cols": value.shape[1]})
                np.save(os.path.join(directory, prefix + name + "." + suffix + ".npy"), value)
    config = {
        "dim": flow.dim, "layers": len(flow.blocks), "hidden": flow.hidden,
        "hidden_layers": flow.hidden_layers, "activation": "relu",
        "max_log_scale": MAX_LOG_SCALE, "batch_norm": False,
        "orders": [block.order.tolist() for block in flow.blocks],
        "hidden_degrees": flow.blocks[0].degrees,
        "shift": flow.shift.double().tolist(), "scale": flow.scale.double().tolist(),
        "tensors": tensors,
    }
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump(config, handle)
    reference = Maf(flow.dim, flow.hidden, len(flow.blocks), flow.hidden_layers).double()
    reference.load_state_dict(flow.state_dict())
    with torch.no_grad():
        log_prob = reference.log_prob(torch.as_tensor(rows, dtype=torch.float64)).numpy()
    np.save(os.path.join(directory, "rows.npy"), np.asarray(rows, dtype=np.float64))
    np.save(os.path.join(directory, "log_prob.npy"), log_prob)


# ----------------------------------------------------------------------------------------
# Timing


def synchronize(device):
    """Waits for the GPU's queued work, so that a clock read after it includes that work."""
    if device != "cpu":
        torch.cuda.synchronize(device)


def rows_per_second(step, rows, min_seconds, device="cpu"):
    """Calls step() once to warm up, then until min_seconds have passed; rows per second."""
    step()
    synchronize(device)
    calls = 0
    start = time.perf_counter()
    while True:
        step()
        calls += 1
        synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls * rows / elapsed


def measure_size(dim, hidden, args, generator):
    """Density, sampling and training-step rows/s of a flow with random outputs."""
    device = args.device
    flow = Maf(dim, hidden)
    initialize(flow, generator, output_range=0.05)
    flow.to(device)
    density_rows = args.density_rows_large if dim >= 784 else args.density_rows
    sample_rows = args.sample_rows.get(dim, 16)
    x = torch.randn(density_rows, dim, generator=generator).to(device)
    z = torch.randn(sample_rows, dim, generator=generator).to(device)

    with torch.no_grad():
        density = rows_per_second(lambda: flow.log_prob(x), density_rows, args.min_seconds,
                                  device)
    sampling = rows_per_second(lambda: flow.inverse(z), sample_rows, args.min_seconds, device)

    # One training step: forward, backward and an Adam update on a batch of 512.
    batch = torch.randn(512, dim, generator=generator).to(device)
    optimizer = torch.optim.AdamW(flow.parameters(), lr=1e-4, weight_decay=1e-6)

    def train_step():
        optimizer.zero_grad()
        loss = -flow.log_prob(batch).mean()
        loss.backward()
        optimizer.step()

    training = rows_per_second(train_step, 512, args.min_seconds, device)
    result = {"dim": dim, "hidden": hidden, "density_rows_per_s": density,
              "sampling_rows_per_s": sampling, "sampling_batch": sample_rows,
              "training_rows_per_s": training}
    if device != "cpu":
        result["density_batch"] = density_rows
    if args.export:
        # Fresh weights so the exported flow is the one the densities are computed with.
        directory = os.path.join(args.export, "flow_d%d_h%d" % (dim, hidden))
        export_flow(flow, directory, torch.randn(64, dim, generator=generator).double().numpy())
        result["export"] = directory
    return result


# ----------------------------------------------------------------------------------------
# The calibration workload


def training_step(flow, optimizer, batch):
    """One Adam step on the batch's mean negative log-likelihood, gradients clipped at 5."""
    optimizer.zero_grad()
    loss = -flow.log_prob(batch).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(flow.parameters(), 5.0)
    optimizer.step()


def warm_up_training(flow, batch, args):
    """A few steps on a copy of the flow, so that the GPU's context, kernels and library
    handles are set up before the clock starts; the flow itself is left as it is."""
    scratch = copy.deepcopy(flow)
    optimizer = torch.optim.AdamW(scratch.parameters(), lr=args.learning_rate, weight_decay=1e-6)
    for _ in range(3):
        training_step(scratch, optimizer, batch)
    with torch.no_grad():
        scratch.log_prob(batch).mean().item()
    synchronize(args.device)


def train_to_target(train, validation, args, generator, device_generator):
    """Adam with decoupled weight decay, clipping and shuffled minibatches, until the mean
    validation log-likelihood reaches args.target; seconds from the start of training."""
    flow = Maf(train.shape[1], args.hidden)
    initialize(flow, generator)
    flow.to(args.device)
    if args.device != "cpu":
        warm_up_training(flow, train[:args.batch_size], args)
    start = time.perf_counter()
    flow.set_standardization(train.mean(dim=0), train.std(dim=0, unbiased=False))
    optimizer = torch.optim.AdamW(flow.parameters(), lr=args.learning_rate, weight_decay=1e-6)
    history = []
    reached = None
    for epoch in range(1, args.max_epochs + 1):
        permutation = torch.randperm(train.shape[0], generator=device_generator,
                                     device=train.device)
        for first in range(0, train.shape[0] - 1, args.batch_size):
            batch = train[permutation[first:first + args.batch_size]]
            training_step(flow, optimizer, batch)
        with torch.no_grad():
            value = flow.log_prob(validation).mean().item()
        synchronize(args.device)
        history.append({"epoch": epoch, "validation_log_likelihood": value,
                        "seconds": time.perf_counter() - start})
        print("baseline epoch %d: validation %.4f at %.1f s"
              % (epoch, value, history[-1]["seconds"]), file=sys.stderr)
        if value >= args.target:
            reached = history[-1]
            break
    return flow, {"target": args.target, "reached": reached is not None,
                  "seconds": reached["seconds"] if reached else None,
                  "epochs": reached["epoch"] if reached else None, "history": history}


def margins_of(booster, x):
    return booster.inplace_predict(x, predict_type="margin")


class DeviceMargins:
    """XGBoost margins of the rows of a CUDA tensor, returned as a CUDA tensor. XGBoost's
    Python package takes device arrays through CuPy; without CuPy the rows are copied to the
    host and XGBoost copies them back to the GPU it predicts on."""

    def __init__(self, booster, device):
        self.booster = booster
        self.device = device
        try:
            import cupy
        except ImportError:
            cupy = None
        self.cupy = cupy
        self.input = "cuda_array" if cupy is not None else "host_copy"

    def __call__(self, x):
        if self.cupy is None:
            margin = margins_of(self.booster, x.cpu().numpy())
            return torch.from_numpy(margin).to(self.device)
        with self.cupy.cuda.Device(torch.device(self.device).index):
            margin = margins_of(self.booster, self.cupy.asarray(x.contiguous()))
        return torch.as_tensor(margin, device=self.device)


def rejection_sample(flow, booster, count, ceiling, generator, rng):
    """Accepted rows from x ~ flow, log u < min(margin, L) - L, in rounds of candidates."""
    accepted = []
    total = 0
    candidates = 0
    margins_seen = []
    while total < count:
        x = flow.sample(args_round(count - total), generator).numpy()
        margin = margins_of(booster, x)
        keep = np.log(rng.random(x.shape[0])) < np.minimum(margin, ceiling) - ceiling
        accepted.append(x[keep])
        margins_seen.append(margin)
        total += int(keep.sum())
        candidates += x.shape[0]
    return np.concatenate(accepted)[:count], candidates, np.concatenate(margins_seen)


def rejection_sample_on_device(flow, margins, count, ceiling, generator, most):
    """The same loop in torch on the flow's device: candidates, margins, uniforms and the
    accept test stay in device memory."""
    accepted = []
    total = 0
    candidates = 0
    margins_seen = []
    while total < count:
        x = flow.sample(args_round(count - total, most), generator)
        margin = margins(x)
        u = torch.rand(x.shape[0], generator=generator, device=x.device)
        keep = torch.log(u) < torch.clamp(margin, max=ceiling) - ceiling
        accepted.append(x[keep])
        margins_seen.append(margin)
        total += int(keep.sum())
        candidates += x.shape[0]
    return torch.cat(accepted)[:count], candidates, torch.cat(margins_seen)


def args_round(missing, most=16384):
    """Candidates per round: enough for the missing rows at about half acceptance."""
    return int(min(most, max(1024, 2.2 * missing)))


def calibration_workload(args, generator, device_generator):
    device = args.device
    on_gpu = device != "cpu"
    data = {name: np.load(os.path.join(args.data, name + ".npy")).astype(np.float32)
            for name in ("train", "validation", "test")}
    train = torch.as_tensor(data["train"]).to(device)
    validation = torch.as_tensor(data["validation"]).to(device)
    test = torch.as_tensor(data["test"]).to(device)
    flow, training = train_to_target(train, validation, args, generator, device_generator)
    result = {"training": training}
    if args.export:
        export_flow(flow, os.path.join(args.export, "trained_flow"), data["test"][:1000])
    with torch.no_grad():
        result["flow_test_log_likelihood"] = flow.log_prob(test).mean().item()

    # Flow samples for the classifier (as many as data rows); their rate is the sampling row.
    batch = args.sample_batch
    if on_gpu:
        flow.sample(batch, device_generator)
        synchronize(device)
    start = time.perf_counter()
    flow_rows = torch.cat([flow.sample(batch, device_generator)
                           for _ in range((train.shape[0] + batch - 1) // batch)])[:train.shape[0]]
    synchronize(device)
    result["flow_sampling_rows_per_s"] = train.shape[0] / (time.perf_counter() - start)
    result["flow_sampling_batch"] = batch

    # 500 trees of depth 6 telling data (label 1) from flow samples (label 0).
    x = np.concatenate([data["train"], flow_rows.cpu().numpy()])
    y = np.concatenate([np.ones(train.shape[0]), np.zeros(flow_rows.shape[0])])
    params = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1,
              "tree_method": "hist", "nthread": args.threads, "seed": 0, "base_score": 0.5}
    if on_gpu:
        params["device"] = device
    start = time.perf_counter()
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=args.trees)
    synchronize(device)
    result["classifier_training_seconds"] = time.perf_counter() - start
    result["trees"] = args.trees
    if args.export:
        booster.save_model(os.path.join(args.export, "classifier.json"))

    # Density and margin rows/s on fresh flow samples (nfcal measures the same rows).
    rows = flow.sample(args.margin_rows, device_generator)
    candidates = rows.cpu().numpy()
    if args.export:
        np.save(os.path.join(args.export, "margin_rows.npy"), candidates)
    with torch.no_grad():
        result["density_rows_per_s"] = rows_per_second(lambda: flow.log_prob(rows),
                                                       candidates.shape[0], args.min_seconds,
                                                       device)
    if on_gpu:
        margins = DeviceMargins(booster, device)
        result["margin_rows_per_s"] = rows_per_second(lambda: margins(rows), candidates.shape[0],
                                                      args.min_seconds, device)
        result.update({"margin_rows": candidates.shape[0], "xgboost_input": margins.input,
                       "max_round": args.max_round})
    else:
        result["margin_rows_per_s"] = rows_per_second(lambda: margins_of(booster, candidates),
                                                      candidates.shape[0], args.min_seconds)

    # Calibrated samples end to end, and the calibrated test log-likelihood it implies.
    ceiling = math.log(2.0)
    if on_gpu:
        rejection_sample_on_device(flow, margins, min(args.samples, 10000), ceiling,
                                   device_generator, args.max_round)
        synchronize(device)
        start = time.perf_counter()
        samples, drawn, margins_seen = rejection_sample_on_device(
            flow, margins, args.samples, ceiling, device_generator, args.max_round)
        synchronize(device)
        seconds = time.perf_counter() - start
        margins_seen = margins_seen.cpu().numpy()
        test_margins = margins(test).cpu().numpy()
    else:
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        samples, drawn, margins_seen = rejection_sample(flow, booster, args.samples, ceiling,
                                                        generator, rng)
        seconds = time.perf_counter() - start
        test_margins = margins_of(booster, data["test"])
    log_z = math.log(np.mean(np.exp(np.minimum(margins_seen, ceiling))))
    with torch.no_grad():
        flow_test = flow.log_prob(test).cpu().numpy()
    calibrated = flow_test + np.minimum(test_margins, ceiling) - log_z
    result.update({"calibrated_samples_per_s": samples.shape[0] / seconds,
                   "acceptance": samples.shape[0] / drawn, "ceiling": ceiling,
                   "log_z": log_z, "calibrated_test_log_likelihood": float(calibrated.mean())})
    return result


# ----------------------------------------------------------------------------------------


def parse_sizes(text):
    return [tuple(int(v) for v in item.split("x")) for item in text.split(",") if item]


def parse_device(text):
    """The device as "cpu" or "cuda:N"; "cuda" is cuda:0."""
    match = re.fullmatch(r"cpu|cuda(?::(\d+))?", text)
    if match is None:
        raise argparse.ArgumentTypeError("expected cpu, cuda or cuda:N, not '%s'" % text)
    return "cpu" if text == "cpu" else "cuda:%d" % int(match.group(1) or 0)


def check_gpu(parser, device):
    """Exits with a message when PyTorch or XGBoost cannot run on the device."""
    if not torch.cuda.is_available():
        parser.error("--device %s: PyTorch %s finds no usable CUDA device (its CUDA build: %s)"
                     % (device, torch.__version__, torch.version.cuda or "none"))
    index = torch.device(device).index
    if index >= torch.cuda.device_count():
        parser.error("--device %s: PyTorch sees %d CUDA device(s)"
                     % (device, torch.cuda.device_count()))
    try:
        major = int(xgb.__version__.split(".")[0])
    except ValueError:
        major = 0
    if major < 2 or not xgb.build_info().get("USE_CUDA"):
        parser.error("--device %s: XGBoost %s cannot train or predict on a GPU (device=cuda "
                     "needs 2.0 or later built with CUDA; the PyPI wheel, `pip install "
                     "xgboost`, is)" % (device, xgb.__version__))
    torch.cuda.set_device(index)


def gpu_info(device):
    index = torch.device(device).index
    return {"name": torch.cuda.get_device_name(index), "torch_cuda": torch.version.cuda,
            "xgboost_cuda": bool(xgb.build_info().get("USE_CUDA"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="8x64,8x256,64x256,784x256",
                        help="DxHIDDEN list for the per-size rows ('' for none)")
    parser.add_argument("--data", help="folder with train.npy, validation.npy, test.npy")
    parser.add_argument("--export", help="folder to write flows and the classifier into")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--target", type=float, default=-12.0,
                        help="validation log-likelihood that ends training")
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--samples", type=int, default=None,
                        help="calibrated samples to draw for the end-to-end rate "
                             "(default 20000; 1000000 on a GPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", type=parse_device, default="cpu",
                        help="cpu, cuda or cuda:N (default cpu)")
    args = parser.parse_args()
    on_gpu = args.device != "cpu"
    if on_gpu:
        check_gpu(parser, args.device)
        # A GPU is busy only with many rows at once: larger batches everywhere but in the
        # training steps, which keep their minibatch sizes.
        args.sample_rows = {8: 65536, 64: 16384, 784: 2048}
        args.density_rows, args.density_rows_large = 1 << 20, 1 << 18
        args.sample_batch, args.margin_rows, args.max_round = 65536, 1 << 20, 1 << 20
        args.samples = 1000000 if args.samples is None else args.samples
    else:
        # D sequential passes: small batches at large D keep one call within seconds.
        args.sample_rows = {8: 4096, 64: 256, 784: 16}
        args.density_rows, args.density_rows_large = 8192, 2048
        args.sample_batch, args.margin_rows, args.max_round = 4096, 65536, 16384
        args.samples = 20000 if args.samples is None else args.samples

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    # Draws made on the GPU come from a generator there; on the CPU it is the same one.
    device_generator = (torch.Generator(device=args.device).manual_seed(args.seed)
                        if on_gpu else generator)
    result = {"torch": torch.__version__, "xgboost": xgb.__version__,
              "numpy": np.__version__, "threads": args.threads, "device": args.device,
              "blas": blas_info()}
    if on_gpu:
        result["gpu"] = gpu_info(args.device)
    result["sizes"] = [measure_size(dim, hidden, args, generator)
                       for dim, hidden in parse_sizes(args.sizes)]
    if args.data:
        result["calibration"] = calibration_workload(args, generator, device_generator)
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")


def blas_info():
    """Which BLAS library and kernel the process runs, when threadpoolctl can tell."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return [{key: entry.get(key) for key in ("internal_api", "version", "architecture",
                                              "num_threads", "filepath")}
            for entry in threadpoolctl.threadpool_info()]


if __name__ == "__main__":
    main()
