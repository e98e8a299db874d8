#!/usr/bin/python3
"""torch-unet-bench.py - the PyTorch anchor for bench/cuda-train-step.sh.

Times PyTorch eager on the network of tests/torch_models.py (the same layers
and parameter shapes as libunet's), and counts the convolution FLOPs of one
forward pass so both sides can be reported in TFLOP/s.

    /usr/bin/python3 bench/torch-unet-bench.py --mode train --size 572 --batch 4
    /usr/bin/python3 bench/torch-unet-bench.py --mode predict --size 512 --tf32 0
    /usr/bin/python3 bench/torch-unet-bench.py --mode train --size 572 --autocast bf16
    /usr/bin/python3 bench/torch-unet-bench.py --mode flops --size 572 --batch 1

Prints one JSON object: ms (median per step or per image), images_per_s,
flops (per step: forward + backward, or per predicted image), tflops.

train:   zero_grad, forward, BCE-with-logits loss, backward, SGD (momentum
         0.99, the paper's) on a batch of size x size inputs.
predict: one size x size image by overlap-tile, as the paper does: the image
         is mirror-padded and cut into tiles whose valid outputs cover it,
         which run as one batch in eval mode under no_grad, then sigmoid.
flops:   the count only (no GPU needed).

--autocast bf16 runs forward and loss under torch.autocast(dtype=bfloat16)
(PyTorch's mixed precision: bf16 convolutions, fp32 parameters, gradients
and optimizer state), the anchor of unet's --precision bf16. --device cpu
runs any mode on the CPU (slow; for checking the script).
"""
import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import torch_models  # noqa: E402


def conv_flops(model, x):
    """Multiply-adds x 2 of every convolution in one forward pass of x."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.ConvTranspose2d):
            n, ci, h, w = inp[0].shape
            total[0] += 2 * n * ci * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1] * h * w
        elif isinstance(mod, nn.Conv2d):
            n, co, ho, wo = out.shape
            ci = mod.in_channels // mod.groups
            total[0] += 2 * n * co * ho * wo * ci * mod.kernel_size[0] * mod.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total[0]


def output_side(model, side, device):
    with torch.no_grad():
        return model(torch.zeros(1, 1, side, side, device=device)).shape[-1]


def timed(fn, steps, warmup, device):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=("train", "predict", "flops"), required=True)
    ap.add_argument("--model", default="unet", choices=sorted(torch_models.DEFAULTS))
    ap.add_argument("--size", type=int, default=572)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tile", type=int, default=572, help="predict: tile input side")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tf32", type=int, default=1)
    ap.add_argument("--autocast", choices=("none", "bf16"), default="none")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()

    device = torch.device("cpu" if args.mode == "flops" else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch-unet-bench: PyTorch sees no CUDA device")
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = bool(args.tf32)
    torch.backends.cuda.matmul.allow_tf32 = bool(args.tf32)
    torch.manual_seed(0)
    model = torch_models.build_model(torch_models.config(args.model)).to(device)

    def amp():
        if args.autocast == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()
    classes = torch_models.config(args.model)["classes"]

    if args.mode in ("train", "flops"):
        x = torch.randn(args.batch, 1, args.size, args.size, device=device)
        flops_fwd = conv_flops(model, x[:1]) * args.batch
        # backward: data and filter gradients, each as costly as the forward
        flops = 3 * flops_fwd
        if args.mode == "flops":
            print(json.dumps({"flops": flops, "forward_flops": flops_fwd}))
            return
        out = output_side(model, args.size, device)
        if classes == 1:
            target = (torch.rand(args.batch, 1, out, out, device=device) > 0.5).float()
            loss_fn = lambda y: F.binary_cross_entropy_with_logits(y, target)  # noqa: E731
        else:
            target = torch.randint(0, classes, (args.batch, out, out), device=device)
            loss_fn = lambda y: F.cross_entropy(y, target)  # noqa: E731
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.99)
        model.train()

        def step():
            opt.zero_grad(set_to_none=False)
            with amp():
                loss = loss_fn(model(x))
            loss.backward()
            opt.step()

        ms = timed(step, args.steps, args.warmup, device)
        images = args.batch
    else:
        model.eval()
        out = output_side(model, args.tile, device)
        per_axis = math.ceil(args.size / out)
        margin = (args.tile - out) // 2
        image = torch.randn(1, 1, args.size, args.size, device=device)
        need = per_axis * out - args.size
        padded = F.pad(image, (margin, margin + need, margin, margin + need), mode="reflect")
        tiles = torch.cat([padded[:, :, ty * out:ty * out + args.tile, tx * out:tx * out + args.tile]
                           for ty in range(per_axis) for tx in range(per_axis)])
        flops = conv_flops(model, tiles[:1]) * tiles.shape[0]

        def step():
            with torch.no_grad(), amp():
                torch.sigmoid(model(tiles).float())

        ms = timed(step, args.steps, args.warmup, device)
        images = 1
    print(json.dumps({"ms": ms, "images_per_s": images * 1e3 / ms, "flops": flops,
                      "tflops": flops / (ms * 1e-3) / 1e12,
                      "torch": torch.__version__, "tf32": bool(args.tf32),
                      "autocast": args.autocast,
                      "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}))


if __name__ == "__main__":
    main()
