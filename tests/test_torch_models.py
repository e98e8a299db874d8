#!/usr/bin/python3
"""test_torch_models.py - libunet's models against their PyTorch twins.

For each case, tests/model-dump (the C model on the reference backend) runs
one training step's forward, loss and backward and writes every array; this
script loads the parameters into tests/torch_models.py's module by name and
order, repeats the step in float64 and compares logits, loss, every gradient
and the batch norm running statistics.

    /usr/bin/python3 tests/test_torch_models.py BUILD/tests/model-dump
Exit 77 (meson SKIP) when PyTorch is missing.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print("SKIP: %s" % e)
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models as tm  # noqa: E402

# (config overrides, batch, input side, seed, weighted loss)
CASES = [
    (dict(model="unet", depth=2, base=2, norm="batch"), 2, 20, 1, 1),
    (dict(model="unet", depth=2, base=2, padding="same", norm="batch", upsample="bilinear",
          activation="leaky", classes=2), 2, 8, 2, 0),
    (dict(model="unet", depth=3, base=2, in_channels=2, upsample="bilinear"), 1, 44, 3, 1),
    (dict(model="unet", depth=3, base=2, padding="same", norm="instance", activation="leaky",
          classes=3), 1, 8, 4, 1),
    (dict(model="unet", depth=3, base=4, classes=2), 1, 60, 7, 0),
    (dict(model="light", depth=3, base=2, in_channels=2, classes=3), 2, 8, 5, 1),
    (dict(model="fcn", base=2, classes=2), 1, 13, 6, 1),
]


def read(d, name):
    return np.fromfile(os.path.join(d, name + ".bin"), dtype=np.float32)


def max_rel(a, b, floor=1e-12):
    """Largest |a - b| relative to the largest |b|, or to floor when that is
    larger: gradients that are zero in exact arithmetic (a conv bias in front
    of a norm) are float32 rounding noise on our side."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), floor))


def loss_of(logits, target, weight, classes):
    if classes == 1:
        per = F.binary_cross_entropy_with_logits(logits, target, reduction="none")[:, 0]
    else:
        per = F.cross_entropy(logits, target[:, 0].long(), reduction="none")
    w = weight[:, 0] if weight is not None else torch.ones_like(per)
    return ((w * per).sum(dim=(1, 2)) / w.sum(dim=(1, 2))).mean()


def run_case(dump, overrides, n, size, seed, weighted):
    cfg = tm.config(**overrides)
    label = json.dumps(overrides)
    failures = []
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([dump, d, json.dumps(cfg), str(n), str(size), str(seed), str(weighted)],
                       check=True)
        lines = open(os.path.join(d, "names.txt")).read().split("\n")
        pnames = [ln.split()[1] for ln in lines if ln.startswith("param ")]
        bnames = [ln.split()[1] for ln in lines if ln.startswith("buffer ")]
        batches = [int(ln.split()[1]) for ln in lines if ln.startswith("num_batches_tracked")][0]
        arrays = {k: read(d, k) for k in ("params", "buffers", "x", "target", "weight", "logits",
                                          "loss", "grads", "buffers_after")}

    model = tm.build_model(cfg).double()
    named = dict(model.named_parameters())
    if list(named) != pnames:
        return ["%s: parameter names differ:\n  torch %s\n  C     %s" % (label, list(named), pnames)]
    bufs = {k: v for k, v in model.named_buffers() if not k.endswith("num_batches_tracked")}
    if list(bufs) != bnames:
        return ["%s: buffer names differ: torch %s, C %s" % (label, list(bufs), bnames)]
    off = 0
    with torch.no_grad():
        for name, p in named.items():
            k = p.numel()
            p.copy_(torch.from_numpy(arrays["params"][off:off + k].astype(np.float64)).view_as(p))
            off += k
        off = 0
        for name, b in bufs.items():
            k = b.numel()
            b.copy_(torch.from_numpy(arrays["buffers"][off:off + k].astype(np.float64)).view_as(b))
            off += k

    model.train()
    x = torch.from_numpy(arrays["x"].astype(np.float64)).view(n, cfg["in_channels"], size, size)
    logits = model(x)
    out = logits.shape[2]
    target = torch.from_numpy(arrays["target"].astype(np.float64)).view(n, 1, out, out)
    weight = None
    if weighted:
        weight = torch.from_numpy(arrays["weight"].astype(np.float64)).view(n, 1, out, out)
    loss = loss_of(logits, target, weight, cfg["classes"])
    loss.backward()

    grad_floor = 1e-3 * max(float(p.grad.abs().max()) for p in named.values())
    checks = [("logits", arrays["logits"], logits.detach().numpy(), 1e-4, 1e-12),
              ("loss", arrays["loss"], [loss.item()], 1e-5, 1e-12)]
    off = 0
    for name, p in named.items():
        k = p.numel()
        checks.append(("grad " + name, arrays["grads"][off:off + k], p.grad.numpy(), 1e-3,
                       grad_floor))
        off += k
    off = 0
    for name, b in bufs.items():
        k = b.numel()
        checks.append(("buffer " + name, arrays["buffers_after"][off:off + k], b.numpy(), 1e-4,
                       1e-12))
        off += k
    worst = 0.0
    for what, ours, theirs, tol, floor in checks:
        r = max_rel(ours, theirs, floor)
        worst = max(worst, r / tol)
        if not r <= tol:
            failures.append("%s: %s differs by %.3g (max relative to the largest value; "
                            "tolerance %g)" % (label, what, r, tol))
    if bufs and batches != 1:
        failures.append("%s: num_batches_tracked is %d after one step" % (label, batches))
    print("%-100s logits %dx%d, worst error %.3f of tolerance" % (label, out, out, worst))
    return failures


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    failures = []
    for case in CASES:
        failures += run_case(sys.argv[1], *case)
    if not tm.check():
        failures.append("reference parameter counts differ")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
