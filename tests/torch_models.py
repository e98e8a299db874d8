#!/usr/bin/python3
"""torch_models.py - PyTorch twins of the unet, light and fcn networks of libunet.

The state_dict names, shapes and order match the C parameter tables exactly
(src/engine/model.h documents them), so a checkpoint written by `unet` loads
into these modules with load_state_dict(strict=True) and the other way round.

    /usr/bin/python3 tests/torch_models.py --check     # parameter counts of the reference configs
    /usr/bin/python3 tests/torch_models.py --model unet --base 16 --norm batch --names

Configs are plain dicts with the keys of UnetModelConfig's JSON form
({"model": "unet", "in_channels": 1, "classes": 1, "depth": 5, "base": 64,
"padding": "valid", "norm": "none", "upsample": "transpose",
"activation": "relu", "leaky_slope": 0.01, "seed": 42}); build_model(cfg)
returns the module.
"""
import argparse
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_MOMENTUM = 0.1
NORM_EPS = 1e-5

DEFAULTS = {
    "unet": dict(model="unet", in_channels=1, classes=1, depth=5, base=64, padding="valid",
                 norm="none", upsample="transpose", activation="relu", leaky_slope=0.01, seed=42),
    "light": dict(model="light", in_channels=1, classes=6, depth=4, base=64, padding="same",
                  norm="instance", upsample="bilinear", activation="leaky", leaky_slope=0.01,
                  seed=42),
    "fcn": dict(model="fcn", in_channels=1, classes=6, depth=4, base=16, padding="same",
                norm="instance", upsample="bilinear", activation="leaky", leaky_slope=0.01,
                seed=42),
}


def config(model="unet", **overrides):
    cfg = dict(DEFAULTS[model])
    cfg.update(overrides)
    return cfg


def _act(cfg):
    if cfg["activation"] == "leaky":
        return lambda x: F.leaky_relu(x, cfg["leaky_slope"])
    return F.relu


def _norm(kind, c):
    # U-Net norms are affine (trainable weight/bias); batch norm tracks running stats.
    if kind == "batch":
        return nn.BatchNorm2d(c, eps=NORM_EPS, momentum=BN_MOMENTUM)
    if kind == "instance":
        return nn.InstanceNorm2d(c, eps=NORM_EPS, affine=True)
    return nn.Identity()


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each followed by the optional norm and the
    activation; the convolutions have a bias only when there is no norm."""

    def __init__(self, cin, cout, cfg):
        super().__init__()
        pad = 1 if cfg["padding"] == "same" else 0
        bias = cfg["norm"] == "none"  # a norm's shift makes a conv bias redundant
        self.act = _act(cfg)
        self.conv_1 = nn.Conv2d(cin, cout, 3, padding=pad, bias=bias)
        self.norm_1 = _norm(cfg["norm"], cout)
        self.conv_2 = nn.Conv2d(cout, cout, 3, padding=pad, bias=bias)
        self.norm_2 = _norm(cfg["norm"], cout)

    def forward(self, x):
        x = self.act(self.norm_1(self.conv_1(x)))
        return self.act(self.norm_2(self.conv_2(x)))


class BilinearUpConv(nn.Conv2d):
    """Bilinear x2 upsampling followed by a 1x1 convolution that halves the
    channels; a Conv2d subclass so its parameters are upconvs.{i}.weight/bias."""

    def __init__(self, cin, cout):
        super().__init__(cin, cout, 1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return super().forward(x)


def center_crop(x, h, w):
    dh = (x.shape[2] - h) // 2
    dw = (x.shape[3] - w) // 2
    return x[:, :, dh:dh + h, dw:dw + w]


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        chans = [cfg["base"] << i for i in range(cfg["depth"])]
        cins = [cfg["in_channels"]] + chans[:-1]
        self.blocks = nn.ModuleList(ConvBlock(ci, co, cfg) for ci, co in zip(cins, chans))

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.blocks):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        return skips


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        # decoder level j = 0 is the deepest one (the first applied)
        chans = [cfg["base"] << (cfg["depth"] - 1 - j) for j in range(cfg["depth"] - 1)]
        if cfg["upsample"] == "bilinear":
            self.upconvs = nn.ModuleList(BilinearUpConv(c, c // 2) for c in chans)
        else:
            self.upconvs = nn.ModuleList(nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in chans)
        self.blocks = nn.ModuleList(ConvBlock(c, c // 2, cfg) for c in chans)

    def forward(self, x, skips):
        for j, (up, block) in enumerate(zip(self.upconvs, self.blocks)):
            x = up(x)
            skip = skips[-2 - j]
            x = block(torch.cat([center_crop(skip, x.shape[2], x.shape[3]), x], 1))
        return x


class UNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.head = nn.Conv2d(cfg["base"], cfg["classes"], 1)

    def forward(self, x):
        skips = self.encoder(x)
        return self.head(self.decoder(skips[-1], skips))


class ConvNormAct(nn.Module):
    """3x3 convolution with bias, non-affine instance norm, activation."""

    def __init__(self, cin, cout, stride, cfg):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.norm = nn.InstanceNorm2d(cout, eps=NORM_EPS, affine=False)
        self.act = _act(cfg)

    def forward(self, x):
        return self.act(self.norm(self.conv(x)))


class LightUNet(nn.Module):
    """Encoder levels: 3x3 conv to base (stride 1), then base*2^i (stride 2);
    decoder: bilinear x2, concat the skip, 3x3 conv back to the skip's width;
    1x1 classifier."""

    def __init__(self, cfg):
        super().__init__()
        chans = [cfg["base"] << i for i in range(cfg["depth"])]
        cins = [cfg["in_channels"]] + chans[:-1]
        self.encoder = nn.Module()
        self.encoder.blocks = nn.ModuleList(
            ConvNormAct(ci, co, 1 if i == 0 else 2, cfg)
            for i, (ci, co) in enumerate(zip(cins, chans)))
        self.decoder = nn.Module()
        self.decoder.blocks = nn.ModuleList(
            ConvNormAct(chans[-1 - j] + chans[-2 - j], chans[-2 - j], 1, cfg)
            for j in range(cfg["depth"] - 1))
        self.head = nn.Conv2d(chans[0], cfg["classes"], 1)

    def forward(self, x):
        skips = []
        for block in self.encoder.blocks:
            x = block(x)
            skips.append(x)
        for j, block in enumerate(self.decoder.blocks):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block(torch.cat([skips[-2 - j], x], 1))
        return self.head(x)


class FCN(nn.Module):
    """Four conv groups (widths base, 2 base, 4 base, 4 base; strides 2, 2, 1, 1),
    a 3x3 classifier, bilinear resize back to the input size."""

    def __init__(self, cfg):
        super().__init__()
        b = cfg["base"]
        widths = [b, 2 * b, 4 * b, 4 * b]
        strides = [2, 2, 1, 1]
        cins = [cfg["in_channels"]] + widths[:-1]
        self.blocks = nn.ModuleList(
            ConvNormAct(ci, co, s, cfg) for ci, co, s in zip(cins, widths, strides))
        self.head = nn.Conv2d(widths[-1], cfg["classes"], 3, padding=1)

    def forward(self, x):
        size = x.shape[2:]
        y = x
        for block in self.blocks:
            y = block(y)
        y = self.head(y)
        return F.interpolate(y, size=size, mode="bilinear", align_corners=False)


def build_model(cfg):
    kind = cfg["model"]
    if kind == "unet":
        return UNet(cfg)
    if kind == "light":
        return LightUNet(cfg)
    if kind == "fcn":
        return FCN(cfg)
    raise ValueError("unknown model %r" % kind)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


# (config, expected parameter count) asserted by the C tests as well
REFERENCE_COUNTS = [
    (config("unet"), 31030593),
    (config("unet", classes=2), 31030658),
    (config("unet", in_channels=3, base=16, padding="same", norm="batch"), 1942577),
    (config("light"), 3873094),
    (config("fcn"), 63686),
    (config("fcn", base=64), 973574),
]


def check():
    ok = True
    for cfg, expected in REFERENCE_COUNTS:
        n = parameter_count(build_model(cfg))
        flag = "ok" if n == expected else "MISMATCH (expected %d)" % expected
        ok &= n == expected
        print("%-8s %-60s %10d  %s" % (cfg["model"], json.dumps(
            {k: v for k, v in cfg.items() if DEFAULTS[cfg["model"]][k] != v}), n, flag))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify the reference parameter counts")
    ap.add_argument("--model", default="unet", choices=sorted(DEFAULTS))
    ap.add_argument("--config", help="model config JSON text (as stored in checkpoints)")
    ap.add_argument("--in-channels", type=int)
    ap.add_argument("--classes", type=int)
    ap.add_argument("--depth", type=int)
    ap.add_argument("--base", type=int)
    ap.add_argument("--padding", choices=["valid", "same"])
    ap.add_argument("--norm", choices=["none", "batch", "instance"])
    ap.add_argument("--upsample", choices=["transpose", "bilinear"])
    ap.add_argument("--activation", choices=["relu", "leaky"])
    ap.add_argument("--names", action="store_true", help="print state_dict names and shapes")
    args = ap.parse_args()
    if args.check:
        return 0 if check() else 1
    if args.config:
        loaded = json.loads(args.config)
        cfg = config(loaded.get("model", "unet"))
        cfg.update(loaded)
    else:
        cfg = config(args.model)
    for key in ("in_channels", "classes", "depth", "base", "padding", "norm", "upsample",
                "activation"):
        v = getattr(args, key)
        if v is not None:
            cfg[key] = v
    model = build_model(cfg)
    if args.names:
        for name, t in model.state_dict().items():
            print(name, list(t.shape))
    print("parameters:", parameter_count(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
