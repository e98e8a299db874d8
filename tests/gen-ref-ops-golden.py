#!/usr/bin/python3
# gen-ref-ops-golden.py - writes tests/ref-ops-golden.h: small PyTorch results the reference backend must reproduce.
#
# Run once with Debian's python3-torch (1.13), from the source root:
#   /usr/bin/python3 tests/gen-ref-ops-golden.py > tests/ref-ops-golden.h
# Inputs come from torch.manual_seed(1234) and are embedded with the outputs,
# so the C test needs no PyTorch. Losses use the definitions in backend.h
# (per image sum(w*l)/sum(w), then batch mean; Dice with smoothing 1) written
# with torch ops, and their gradients come from autograd.
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_default_dtype(torch.float32)
out = []


def emit(name, t):
    v = t.detach().reshape(-1).tolist()
    out.append("static const float %s[%d] = {" % (name, len(v)))
    for i in range(0, len(v), 6):
        out.append("    " + ", ".join("%.9g" % x for x in v[i:i + 6]) + ",")
    out.append("};")


def rand(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(*shape) * (hi - lo) + lo)


def conv_case(prefix, n, ci, h, w, co, k, stride, pad, bias):
    x = rand(n, ci, h, w).requires_grad_()
    wt = rand(co, ci, k, k, lo=-0.5, hi=0.5).requires_grad_()
    b = rand(co).requires_grad_() if bias else None
    y = F.conv2d(x, wt, b, stride=stride, padding=pad)
    dy = rand(*y.shape)
    y.backward(dy)
    emit(prefix + "_x", x)
    emit(prefix + "_w", wt)
    if bias:
        emit(prefix + "_b", b)
    emit(prefix + "_y", y)
    emit(prefix + "_dy", dy)
    emit(prefix + "_dx", x.grad)
    emit(prefix + "_dw", wt.grad)
    if bias:
        emit(prefix + "_db", b.grad)


# conv2d: 3x3 valid with bias on a batch of 2; 3x3 stride 2 same padding, no bias.
conv_case("conv_a", 2, 2, 5, 4, 3, 3, 1, 0, True)
conv_case("conv_b", 1, 2, 5, 6, 2, 3, 2, 1, False)

# ConvTranspose2d(3, 2, kernel_size=2, stride=2): weight [Cin, Cout, 2, 2].
x = rand(1, 3, 2, 3).requires_grad_()
wt = rand(3, 2, 2, 2, lo=-0.5, hi=0.5).requires_grad_()
b = rand(2).requires_grad_()
y = F.conv_transpose2d(x, wt, b, stride=2)
dy = rand(*y.shape)
y.backward(dy)
for name, t in [("x", x), ("w", wt), ("b", b), ("y", y), ("dy", dy), ("dx", x.grad),
                ("dw", wt.grad), ("db", b.grad)]:
    emit("upconv_" + name, t)

# Bilinear x2 (scale_factor) and resize to a size, align_corners=False.
x = rand(1, 2, 3, 4).requires_grad_()
y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
dy = rand(*y.shape)
y.backward(dy)
for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
    emit("up2_" + name, t)
for tag, shape, size in [("down", (1, 1, 5, 7), (3, 4)), ("up", (1, 1, 3, 2), (7, 5))]:
    x = rand(*shape).requires_grad_()
    y = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    dy = rand(*y.shape)
    y.backward(dy)
    for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
        emit("resize_%s_%s" % (tag, name), t)

# MaxPool2d(2) on 5x5 (floor); the second plane is made of ties.
x = rand(1, 2, 5, 5)
x[0, 1] = torch.tensor([[1, 1, 0, 2, 5], [1, 0, 2, 2, 5], [3, 0, 0, 0, 5],
                        [0, 3, 0, 0, 5], [5, 5, 5, 5, 5]], dtype=torch.float32)
x.requires_grad_()
y = F.max_pool2d(x, 2)
dy = rand(*y.shape)
y.backward(dy)
for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad)]:
    emit("pool_" + name, t)

# BatchNorm2d(3, momentum=0.1, eps=1e-5): one training step, then evaluation.
bn = torch.nn.BatchNorm2d(3, momentum=0.1, eps=1e-5)
with torch.no_grad():
    bn.weight.copy_(rand(3, lo=0.5, hi=1.5))
    bn.bias.copy_(rand(3))
    bn.running_mean.copy_(rand(3))
    bn.running_var.copy_(rand(3, lo=0.5, hi=2.0))
emit("bn_gamma", bn.weight)
emit("bn_beta", bn.bias)
emit("bn_rm0", bn.running_mean)
emit("bn_rv0", bn.running_var)
x = (rand(2, 3, 2, 3) * 2 + 0.5).requires_grad_()
bn.train()
y = bn(x)
dy = rand(*y.shape)
y.backward(dy)
for name, t in [("x", x), ("y", y), ("dy", dy), ("dx", x.grad), ("dgamma", bn.weight.grad),
                ("dbeta", bn.bias.grad), ("rm1", bn.running_mean), ("rv1", bn.running_var)]:
    emit("bn_" + name, t)
bn.eval()
x2 = rand(1, 3, 2, 2)
emit("bn_eval_x", x2)
emit("bn_eval_y", bn(x2))

# InstanceNorm2d(2, affine=True, eps=1e-5).
inorm = torch.nn.InstanceNorm2d(2, affine=True, eps=1e-5)
with torch.no_grad():
    inorm.weight.copy_(rand(2, lo=0.5, hi=1.5))
    inorm.bias.copy_(rand(2))
x = (rand(2, 2, 3, 3) * 3).requires_grad_()
y = inorm(x)
dy = rand(*y.shape)
y.backward(dy)
for name, t in [("gamma", inorm.weight), ("beta", inorm.bias), ("x", x), ("y", y), ("dy", dy),
                ("dx", x.grad), ("dgamma", inorm.weight.grad), ("dbeta", inorm.bias.grad)]:
    emit("in_" + name, t)


def per_image(l, w):
    # backend.h reduction: per image sum(w*l)/sum(w), then the batch mean.
    return ((l * w).flatten(1).sum(1) / w.flatten(1).sum(1)).mean()


# Softmax CE with class and pixel weights, N=2, K=3, 2x3.
logits = rand(2, 3, 2, 3, lo=-3, hi=3).requires_grad_()
target = torch.randint(0, 3, (2, 2, 3))
w = rand(2, 2, 3, lo=0.2, hi=3.0)
cw = torch.tensor([0.5, 2.0, 1.25])
l = F.cross_entropy(logits, target, weight=cw, reduction="none")
loss = per_image(l, w)
loss.backward()
for name, t in [("logits", logits), ("target", target.float()), ("w", w), ("cw", cw),
                ("loss", loss), ("dlogits", logits.grad)]:
    emit("ce_" + name, t)

# BCE with logits and pixel weights, N=2, 2x3.
logits = rand(2, 1, 2, 3, lo=-3, hi=3).requires_grad_()
target = (torch.rand(2, 1, 2, 3) < 0.5).float()
w = rand(2, 1, 2, 3, lo=0.2, hi=3.0)
loss = per_image(F.binary_cross_entropy_with_logits(logits, target, reduction="none"), w)
loss.backward()
for name, t in [("logits", logits), ("target", target), ("w", w), ("loss", loss),
                ("dlogits", logits.grad)]:
    emit("bce_" + name, t)


def dice(p, t, w):
    # per image and class 1 - (2*sum(wpt)+1)/(sum(wp)+sum(wt)+1), mean over both.
    inter = (w * p * t).flatten(2).sum(2)
    ps = (w * p).flatten(2).sum(2)
    ts = (w * t).flatten(2).sum(2)
    return (1 - (2 * inter + 1) / (ps + ts + 1)).mean()


logits = rand(2, 1, 3, 3, lo=-3, hi=3).requires_grad_()
target = (torch.rand(2, 1, 3, 3) < 0.5).float()
w = rand(2, 1, 3, 3, lo=0.2, hi=3.0)
loss = dice(torch.sigmoid(logits), target, w)
loss.backward()
for name, t in [("logits", logits), ("target", target), ("w", w), ("loss", loss),
                ("dlogits", logits.grad)]:
    emit("dice1_" + name, t)

logits = rand(2, 3, 2, 3, lo=-3, hi=3).requires_grad_()
target = torch.randint(0, 3, (2, 1, 2, 3))
onehot = F.one_hot(target[:, 0], 3).permute(0, 3, 1, 2).float()
loss = dice(torch.softmax(logits, 1), onehot, torch.ones(2, 1, 2, 3))
loss.backward()
for name, t in [("logits", logits), ("target", target.float()), ("loss", loss),
                ("dlogits", logits.grad)]:
    emit("dice3_" + name, t)

# Optimizers: two steps from the same start, the same two gradients.
p0 = rand(7)
g1 = rand(7)
g2 = rand(7)
emit("opt_p0", p0)
emit("opt_g1", g1)
emit("opt_g2", g2)


def run(make, tag):
    p = torch.nn.Parameter(p0.clone())
    opt = make([p])
    for g in (g1, g2):
        p.grad = g.clone()
        opt.step()
    emit("opt_" + tag, p)


run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), "sgd_nesterov")
run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.0), "sgd_momentum")
run(lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), "adam")
run(lambda ps: torch.optim.AdamW(ps, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1), "adamw")

print("/* ref-ops-golden.h - PyTorch %s golden values for test-ref-ops.c; generated by "
      "tests/gen-ref-ops-golden.py, do not edit. */" % torch.__version__.split("a")[0])
print("#ifndef UNET_REF_OPS_GOLDEN_H\n#define UNET_REF_OPS_GOLDEN_H\n")
print("\n".join(out))
print("\n#endif")
