#!/usr/bin/python3
"""predict.py - whole-image prediction (what `unet predict` does) of libunet
beside PyTorch 1.13 on the same tiles, in one invocation.

    /usr/bin/python3 bench/predict.py [--build build] [--threads 2] [--size 512]
        [--tile 572] [--steps 3] [--warmup 1] [--rounds 1] [--model unet] [--tta]

Ours: `unet bench predict --device cpu` times unet_predict on an S x S image
(overlap-tile with mirrored context, one network pass per tile,
sigmoid/softmax, stitching), the work of `unet predict` without the file
I/O, twice: on tiles of --tile (572, the paper's) and on the tiles `unet
predict` picks by default (for 512 x 512 one tile of 700: the fewest pixels
computed). PyTorch: a worker process (this file with --torch-worker) builds the same network (tests/torch_models.py, the
PyTorch twin of model.h), mirror-pads the image the same way (numpy
'symmetric'), runs the same tiles one at a time in eval mode under no_grad,
applies the sigmoid and stitches the valid outputs. Each side gets `threads`
threads (OMP_NUM_THREADS, torch.set_num_threads) and its own process so that
each peak RSS is its own. GFLOP/s counts the convolutions of all tiles (the
same network, so the same count for both). The machine is shared: the load
average is printed after each side, and the CPU time (user + system of the
whole process, per image) is reported beside the wall time as the figure a
busy machine disturbs least.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def torch_worker(args):
    import numpy as np
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import torch_models

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = torch_models.config(args.model)
    model = torch_models.build_model(cfg).eval()
    tile = args.tile
    with torch.no_grad():
        out = model(torch.zeros(1, cfg["in_channels"], tile, tile)).shape[-1]
    border = (tile - out) // 2
    S = args.size
    n = -(-S // out)  # tiles per axis
    rng = np.random.default_rng(12345)
    image = rng.random((cfg["in_channels"], S, S), dtype=np.float32)
    transforms = 8 if args.tta else 1

    def predict():
        # mirror with the edge repeated, grown to cover every input tile
        need = n * out - S
        padded = np.pad(image, ((0, 0), (border, border + need), (border, border + need)),
                        mode="symmetric")
        probs = np.empty((cfg["classes"], S, S), dtype=np.float32)
        forwards = []
        with torch.no_grad():
            for ty in range(n):
                for tx in range(n):
                    x = torch.from_numpy(np.ascontiguousarray(
                        padded[None, :, ty * out:ty * out + tile, tx * out:tx * out + tile]))
                    acc = None
                    for k in range(transforms):
                        xk = torch.rot90(x.flip(-1) if k & 4 else x, k & 3, (-2, -1))
                        t0 = time.perf_counter()
                        y = model(xk)
                        forwards.append(time.perf_counter() - t0)
                        y = torch.sigmoid(y) if cfg["classes"] == 1 else torch.softmax(y, 1)
                        y = torch.rot90(y, -(k & 3), (-2, -1))
                        y = y.flip(-1) if k & 4 else y
                        acc = y if acc is None else acc + y
                    y = (acc / transforms)[0].numpy()
                    h = min(out, S - ty * out)
                    w = min(out, S - tx * out)
                    probs[:, ty * out:ty * out + h, tx * out:tx * out + w] = y[:, :h, :w]
        return probs, forwards

    times, fwd, cpu = [], [], []
    for step in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        probs, forwards = predict()
        t, c = time.perf_counter() - t0, time.process_time() - c0
        if step >= args.warmup:
            times.append(t)
            cpu.append(c)
            fwd += forwards
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"device": "pytorch %s" % torch.__version__, "steps": times,
                      "cpu_s_per_step": statistics.mean(cpu),
                      "forward_s": statistics.median(fwd), "tiles": n * n, "tile": tile,
                      "tile_out": out, "peak_rss_mb": peak, "checksum": float(probs.mean())}))


def run_ours(args, env, tile):
    exe = os.path.join(args.build, "src", "cli", "unet")
    cmd = [exe, "bench", "predict", "--device", "cpu", "--threads", str(args.threads),
           "--size", str(args.size), "--model", args.model,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--json"]
    if tile:
        cmd += ["--tile", str(tile)]
    if args.tta:
        cmd.append("--tta")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("predict.py: %s failed:\n%s" % (" ".join(cmd), p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_torch(args, env, tile):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker",
           "--threads", str(args.threads), "--size", str(args.size), "--model", args.model,
           "--tile", str(tile), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.tta:
        cmd.append("--tta")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("predict.py: the PyTorch worker failed:\n%s" % p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def load():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def compare(args, env, tile, label):
    """Both sides on the same tiles; tile 0: the one `unet predict` picks."""
    ours, theirs = [], []
    for r in range(args.rounds):
        ours.append(run_ours(args, env, tile))
        tile = ours[-1]["tile"]
        print("  %s, round %d: ours median %.3f s per image; %s" %
              (label, r + 1, statistics.median(ours[-1]["steps"]), load()))
        theirs.append(run_torch(args, env, tile))
        print("  %s, round %d: pytorch median %.3f s per image (%.3f s per tile forward); %s" %
              (label, r + 1, statistics.median(theirs[-1]["steps"]), theirs[-1]["forward_s"],
               load()))
    o, t = ours[0], theirs[0]
    if (o["tiles"], o["tile"], o["tile_out"]) != (t["tiles"], t["tile"], t["tile_out"]):
        sys.exit("predict.py: the two sides tiled differently: ours %d tiles of %d -> %d, "
                 "pytorch %d tiles of %d -> %d" % (o["tiles"], o["tile"], o["tile_out"],
                                                   t["tiles"], t["tile"], t["tile_out"]))
    gflop = o["step_gflop"]
    print("%s: %d tile%s of %d -> %d per image%s, %.1f GFLOP of convolutions per image" %
          (label, o["tiles"], "" if o["tiles"] == 1 else "s", o["tile"], o["tile_out"],
           " x 8 transforms" if args.tta else "", gflop))

    def summary(name, runs):
        steps = [s for run in runs for s in run["steps"]]
        best, med = min(steps), statistics.median(steps)
        rss = max(run["peak_rss_mb"] for run in runs)
        cpu = statistics.mean(run["cpu_s_per_step"] for run in runs)
        print("  %-24s best %7.3f s  median %7.3f s per image  %6.1f GFLOP/s (median)  "
              "CPU %7.3f s  peak RSS %6.0f MB" % (name, best, med, gflop / med, cpu, rss))
        return best, med, rss, cpu

    ob, om, orss, ocpu = summary("libunet cpu", ours)
    tb, tm, trss, tcpu = summary(theirs[0]["device"], theirs)
    print("  ratio ours/pytorch: time best %.3f, median %.3f (goal <= 0.4); CPU time %.3f; "
          "peak RSS %.3f" % (ob / tb, om / tm, ocpu / tcpu, orss / trss))
    return om


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--tile", type=int, default=572,
                    help="tile side of the first comparison (the second uses unet's default)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--model", default="unet")
    ap.add_argument("--tta", action="store_true")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(args)

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    print("predict, %s, %dx%d image%s, %d threads each; %s" %
          (args.model, args.size, args.size, " x 8 (TTA)" if args.tta else "", args.threads,
           load()))
    fixed = compare(args, env, args.tile, "tiles of %d" % args.tile)
    default = compare(args, env, 0, "unet predict's default tiles")
    print("unet predict's default tiling against ours on tiles of %d: %.3f x the time"
          % (args.tile, default / fixed))


if __name__ == "__main__":
    main()
