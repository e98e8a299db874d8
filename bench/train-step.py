#!/usr/bin/python3
"""train-step.py - one SGD training step of the same network in libunet's CPU
backend and in PyTorch, side by side, in one invocation.

    /usr/bin/python3 bench/train-step.py [--build build] [--threads 2]
        [--steps 5] [--warmup 1] [--rounds 2] [--model unet] [--size 572]
        [--base 64] [--profile] [--passive] [--layers]

Each round runs our bench-train-step (build/bench) and then a PyTorch worker
(this file with --torch-worker), each in its own process so that each peak
RSS (getrusage ru_maxrss) is its own. Both take the same network
(tests/torch_models.py is PyTorch's twin of model.h), a 1-image batch, a
0/1 target, BCE-with-logits (cross-entropy for K classes), SGD with lr 0.01
and momentum 0.99, `threads` threads each. Seconds per step are reported as
best and median over every timed step of every round; GFLOP/s uses the
convolution FLOPs our profile counts (the same network, so the same count
for both). The machine is shared: the load average is printed before and
after.

--layers instead times each convolution of the default U-Net alone
(forward, backward-data, backward-weights): our bench-layers beside
PyTorch's F.conv2d / F.conv_transpose2d and aten.convolution_backward.
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
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import torch_models

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    overrides = {"base": args.base} if args.base else {}
    cfg = torch_models.config(args.model, **overrides)
    model = torch_models.build_model(cfg)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.99)
    x = torch.rand(1, cfg["in_channels"], args.size, args.size)
    with torch.no_grad():
        out = model(x).shape[2]
    if cfg["classes"] == 1:
        target = (torch.rand(1, 1, out, out) > 0.5).float()
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        target = torch.randint(0, cfg["classes"], (1, out, out))
        loss_fn = torch.nn.CrossEntropyLoss()
    times, cpu = [], []
    for step in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), target)
        loss.backward()
        opt.step()
        t, c = time.perf_counter() - t0, time.process_time() - c0
        if step >= args.warmup:
            times.append(t)
            cpu.append(c)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"device": "pytorch %s" % torch.__version__, "steps": times,
                      "cpu_s_per_step": sum(cpu) / len(cpu), "peak_rss_mb": peak,
                      "loss": float(loss)}))


def unet_layers(size):
    """The default U-Net's convolutions, as bench/bench-layers.c lists them:
    (name, transposed, ci, co, side, kernel, first)."""
    out, s, cin = [], size, 1
    for i in range(5):
        c = 64 << i
        if i:
            s //= 2
        out.append(("enc%d.conv1" % i, False, cin, c, s, 3, i == 0))
        out.append(("enc%d.conv2" % i, False, c, c, s - 2, 3, False))
        s -= 4
        cin = c
    for j in range(4):
        c = 1024 >> j
        out.append(("dec%d.upconv" % j, True, c, c // 2, s, 2, False))
        s *= 2
        out.append(("dec%d.conv1" % j, False, c, c // 2, s, 3, False))
        out.append(("dec%d.conv2" % j, False, c // 2, c // 2, s - 2, 3, False))
        s -= 4
    out.append(("head", False, 64, 1, s, 1, False))
    return out


def torch_layers_worker(args):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    res = []
    with torch.no_grad():
        for name, up, ci, co, h, k, first in unet_layers(args.size):
            x = torch.randn(1, ci, h, h)
            w = torch.randn(ci, co, 2, 2) if up else torch.randn(co, ci, k, k)
            b = torch.randn(co)
            stride = [2, 2] if up else [1, 1]

            def fwd():
                return F.conv_transpose2d(x, w, b, stride=2) if up else F.conv2d(x, w, b)
            y = fwd()
            gy = torch.randn_like(y)

            def bwd(mask):
                return torch.ops.aten.convolution_backward(gy, x, w, [co], stride, [0, 0], [1, 1],
                                                           up, [0, 0], 1, mask)
            passes = [fwd, lambda: bwd([True, False, False]), lambda: bwd([False, True, True])]
            best = []
            for p, fn in enumerate(passes):
                if p == 1 and first:
                    best.append(0.0)
                    continue
                fn()
                ts = []
                for _ in range(args.steps):
                    t0 = time.perf_counter()
                    fn()
                    ts.append(time.perf_counter() - t0)
                best.append(min(ts) * 1e3)
            res.append({"name": name, "best_ms": best})
    print(json.dumps({"device": "pytorch %s" % torch.__version__, "layers": res}))


def layers(args, env):
    exe = os.path.join(args.build, "bench", "bench-layers")
    cmd = [exe, "--threads", str(args.threads), "--size", str(args.size), "--reps",
           str(args.steps), "--json"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("train-step.py: %s failed:\n%s" % (" ".join(cmd), p.stderr))
    ours = json.loads(p.stdout.strip().splitlines()[-1])
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-layers-worker", "--threads",
           str(args.threads), "--size", str(args.size), "--steps", str(args.steps)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("train-step.py: the PyTorch worker failed:\n%s" % p.stderr)
    theirs = json.loads(p.stdout.strip().splitlines()[-1])
    print("per-layer, best of %d, ms: ours / %s (ratio); %s" %
          (args.steps, theirs["device"], load()))
    print("%-12s %-22s %-24s %-24s %-24s" % ("layer", "shape", "forward", "backward-data",
                                             "backward-weights"))
    tot_o, tot_t = [0.0] * 3, [0.0] * 3
    for lo, lt in zip(ours["layers"], theirs["layers"]):
        cells = []
        for p in range(3):
            o, t = lo["best_ms"][p], lt["best_ms"][p]
            tot_o[p] += o
            tot_t[p] += t
            cells.append("%7.1f / %7.1f (%.2f)" % (o, t, o / t) if t > 0 else "-")
        print("%-12s %-22s %-24s %-24s %-24s" % (lo["name"], lo["shape"], *cells))
    gflop = ours["total_gflop"]
    so, st = sum(tot_o), sum(tot_t)
    print("total: ours %.0f ms (%.0f GFLOP/s), pytorch %.0f ms (%.0f GFLOP/s), ratio %.3f; %s" %
          (so, gflop / so * 1e3, st, gflop / st * 1e3, so / st, load()))


def run_ours(args, env):
    exe = os.path.join(args.build, "bench", "bench-train-step")
    cmd = [exe, "--device", "cpu", "--threads", str(args.threads), "--size", str(args.size),
           "--model", args.model, "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--json", "--profile"]
    if args.base:
        cmd += ["--base", str(args.base)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("train-step.py: %s failed:\n%s" % (" ".join(cmd), p.stderr))
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["profile"] = p.stderr
    return res


def run_torch(args, env):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker",
           "--threads", str(args.threads), "--size", str(args.size), "--model", args.model,
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if args.base:
        cmd += ["--base", str(args.base)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("train-step.py: the PyTorch worker failed:\n%s" % p.stderr)
    return json.loads(p.stdout.strip().splitlines()[-1])


def load():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", default="unet")
    ap.add_argument("--size", type=int, default=572)
    ap.add_argument("--base", type=int, default=0)
    ap.add_argument("--profile", action="store_true", help="print our per-op profile")
    ap.add_argument("--passive", action="store_true",
                    help="OMP_WAIT_POLICY=passive for both (idle threads sleep instead of "
                         "spinning, so CPU time counts work only on a loaded machine)")
    ap.add_argument("--layers", action="store_true", help="time each convolution alone")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch-layers-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    if args.torch_layers_worker:
        return torch_layers_worker(args)

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if args.passive:
        env["OMP_WAIT_POLICY"] = "passive"
    if args.layers:
        return layers(args, env)
    print("train step, %s %dx%d, batch 1, %d threads each; %s" %
          (args.model, args.size, args.size, args.threads, load()))
    ours, theirs = [], []
    for r in range(args.rounds):
        ours.append(run_ours(args, env))
        theirs.append(run_torch(args, env))
        print("  round %d: ours median %.3f s, pytorch median %.3f s; %s" %
              (r + 1, statistics.median(ours[-1]["steps"]),
               statistics.median(theirs[-1]["steps"]), load()))
    gflop = ours[0]["step_gflop"]

    def summary(name, runs):
        steps = [t for run in runs for t in run["steps"]]
        best, med = min(steps), statistics.median(steps)
        rss = max(run["peak_rss_mb"] for run in runs)
        cpu = min(run["cpu_s_per_step"] for run in runs)
        print("  %-24s best %6.3f s  median %6.3f s  %5.0f GFLOP/s (best)  CPU %6.2f s/step  "
              "peak RSS %5.0f MB" % (name, best, med, gflop / best, cpu, rss))
        return best, med, rss, cpu

    print("%.1f GFLOP of convolutions per step (forward, backward-data, backward-weights)" % gflop)
    ob, om, orss, ocpu = summary("libunet cpu (oneDNN)", ours)
    tb, tm, trss, tcpu = summary(theirs[0]["device"], theirs)
    print("ratio ours/pytorch: time best %.3f, median %.3f (goal <= 0.4); CPU time %.3f; "
          "peak RSS %.3f (goal <= 0.6)" % (ob / tb, om / tm, ocpu / tcpu, orss / trss))
    print("(CPU time: user + system seconds of all threads per step, the least of the rounds;"
          " less sensitive than wall time to other load on the machine)")
    print("losses after the last step: ours %.5f, pytorch %.5f (different initialisations)"
          % (ours[-1]["loss"], theirs[-1]["loss"]))
    if args.profile:
        print(ours[-1]["profile"], end="")


if __name__ == "__main__":
    main()
