#!/usr/bin/python3
"""test-torch-parity.py - checkpoints cross between unet and PyTorch.

For a small unet (two variants), light and fcn:
  1. `unet init` writes a checkpoint; tests/torch_models.py's module loads it
     with load_state_dict(strict=True); the same input through our forward
     (tests/forward-driver, reference backend) and torch's agrees within 1e-4
     relative to the output's scale.
  2. The other way: a torch module whose batch norm statistics were moved by
     a few training passes is saved (tests/safetensors_np.py); our driver
     loads it (strict as well), agrees with torch's forward, and writes it
     back; that copy holds exactly torch's tensors (num_batches_tracked I64).
Exits 77 (skip) when /usr/bin/python3 has no torch.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
except ImportError as e:  # meson: SKIP
    print(f"SKIP: PyTorch is not available ({e})")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import safetensors_np  # noqa: E402
import torch_models  # noqa: E402

BUILD = os.environ.get("UNET_BUILD_ROOT", os.path.join(HERE, "..", "build"))
UNET = os.environ.get("UNET_EXE", os.path.join(BUILD, "src", "cli", "unet"))
DRIVER = os.path.join(BUILD, "tests", "forward-driver")
TOL = 1e-4

# (config, input shape N,C,H,W)
CASES = [
    (torch_models.config("unet", depth=3, base=8, seed=7), (1, 1, 60, 60)),
    (torch_models.config("unet", in_channels=3, classes=3, depth=3, base=8, padding="same",
                         norm="batch", upsample="bilinear", activation="leaky", seed=3),
     (2, 3, 32, 32)),
    (torch_models.config("light", depth=3, base=8, seed=11), (1, 1, 32, 32)),
    (torch_models.config("fcn", base=8, seed=5), (1, 1, 40, 40)),
]

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"FAIL: {what}")


def init_args(cfg):
    """`unet init` options for a config dict."""
    args = ["--model", cfg["model"], "--in-channels", str(cfg["in_channels"]),
            "--classes", str(cfg["classes"]), "--base", str(cfg["base"]),
            "--seed", str(cfg["seed"])]
    if cfg["model"] != "fcn":  # fcn has a fixed depth
        args += ["--depth", str(cfg["depth"])]
    if cfg["model"] == "unet":
        args += ["--padding", cfg["padding"], "--norm", cfg["norm"],
                 "--upsample", cfg["upsample"], "--activation", cfg["activation"]]
    return args


def ours(ckpt, x, tmp, config=None, save=None):
    inp = os.path.join(tmp, "x.raw")
    out = os.path.join(tmp, "y.raw")
    x.astype(np.float32).tofile(inp)
    cmd = [DRIVER, ckpt, inp, *map(str, x.shape), out]
    if config is not None:
        cmd += ["--config", json.dumps(config)]
    if save is not None:
        cmd += ["--save", save]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"forward-driver failed: {r.stderr.strip()}")
    shape = tuple(int(v) for v in r.stdout.split())
    return np.fromfile(out, dtype=np.float32).reshape(shape)


def rel_err(a, b):
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-6))


def case(cfg, shape, tmp):
    name = f"{cfg['model']}/{cfg['padding']}/{cfg['norm']}"
    rng = np.random.default_rng(cfg["seed"])
    x = rng.uniform(-1, 1, size=shape).astype(np.float32)

    # 1. unet init -> torch
    path = os.path.join(tmp, f"init-{cfg['model']}-{cfg['seed']}.safetensors")
    r = subprocess.run([UNET, "init", *init_args(cfg), "--out", path], capture_output=True,
                       text=True)
    check(r.returncode == 0, f"{name}: unet init: {r.stderr.strip()}")
    if r.returncode != 0:
        return
    check(path in r.stdout, f"{name}: unet init does not say what it wrote: {r.stdout!r}")
    sd, meta = safetensors_np.load_torch_state_dict(path)
    check(meta.get("format") == "unet-workbench-1", f"{name}: format metadata {meta.get('format')}")
    stored = json.loads(meta.get("model_config", "{}"))
    check(all(stored.get(k) == v for k, v in cfg.items() if k != "leaky_slope"),
          f"{name}: stored model_config {stored} differs from {cfg}")
    model = torch_models.build_model(cfg)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        check(False, f"{name}: torch load_state_dict(strict=True) refused our file: {e}")
        return
    model.eval()
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = ours(path, x, tmp)
    e = rel_err(got, want)
    check(e <= TOL, f"{name}: unet init -> torch: forward differs by {e:.3g} (shapes {got.shape} "
                    f"vs {want.shape})")
    print(f"{name:28s} ours -> torch   forward {want.shape}: max rel diff {e:.2e}")

    # 2. torch (moved batch norm statistics) -> ours -> our writer
    torch.manual_seed(cfg["seed"])
    model = torch_models.build_model(cfg)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.from_numpy(rng.uniform(-1, 2, size=shape).astype(np.float32)))
    model.eval()
    sd = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    tpath = os.path.join(tmp, "torch.safetensors")
    safetensors_np.save(tpath, sd)
    copy = os.path.join(tmp, "copy.safetensors")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = ours(tpath, x, tmp, config=cfg, save=copy)
    e = rel_err(got, want)
    check(e <= TOL, f"{name}: torch -> ours: forward differs by {e:.3g}")
    print(f"{name:28s} torch -> ours   forward {want.shape}: max rel diff {e:.2e}")
    back, _ = safetensors_np.load(copy)
    check(set(back) == set(sd), f"{name}: our copy's tensors {sorted(set(back) ^ set(sd))} differ")
    for k, v in sd.items():
        if k in back:
            check(back[k].dtype == v.dtype and back[k].shape == v.shape and
                  np.array_equal(back[k], v), f"{name}: tensor {k} changed on the way through")
    nbt = [k for k in sd if k.endswith("num_batches_tracked")]
    if nbt:
        check(int(back[nbt[0]]) == 3 and back[nbt[0]].dtype == np.int64,
              f"{name}: num_batches_tracked {back[nbt[0]]!r}")


def main():
    for exe in (UNET, DRIVER):
        if not os.path.exists(exe):
            print(f"FAIL: {exe} is not built")
            return 1
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="unet-parity-") as tmp:
        for cfg, shape in CASES:
            try:
                case(cfg, shape, tmp)
            except Exception as e:  # report and go on with the next case
                check(False, f"{cfg['model']}: {e}")
    if failures:
        print(f"torch-parity: {failures} check(s) failed")
        return 1
    print("torch-parity: all checks passed")
    return 0


sys.exit(main())
