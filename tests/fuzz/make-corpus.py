#!/usr/bin/python3
"""make-corpus.py - writes the seed corpora of tests/fuzz/corpus/<target>/.

Small valid files (a few KB per target) in the layouts the loaders accept,
plus a few they must refuse cleanly, so the fuzzers start from every branch.
PNG and TIFF files are written by hand here (no imaging library) to get the
odd layouts: 1/2/4-bit grey, palette with transparency, Adam7 interlacing,
16-bit, planar and tiled TIFF, PackBits and deflate, min-is-white, stacks.

usage: tests/fuzz/make-corpus.py UNET_EXE [OUT_DIR (default tests/fuzz/corpus)]
UNET_EXE is used for checkpoints (unet init) and augmentation configs.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np


# ---- PNG ----------------------------------------------------------------

def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(values, bits):
    if bits >= 8:
        fmt = ">B" if bits == 8 else ">H"
        return b"".join(struct.pack(fmt, int(v)) for v in values)
    out, acc, n = bytearray(), 0, 0
    for v in values:
        acc = (acc << bits) | int(v)
        n += bits
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def png(pixels, color_type, bits, plte=None, trns=None, interlace=False):
    """pixels: array [H, W, samples] of ints."""
    h, w = pixels.shape[:2]
    flat = pixels.reshape(h, w, -1)
    raw = bytearray()
    if not interlace:
        for y in range(h):
            raw += b"\0" + pack_row(flat[y].reshape(-1), bits)
    else:
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            xs = list(range(x0, w, dx))
            if not xs:
                continue
            for y in range(y0, h, dy):
                raw += b"\0" + pack_row(flat[y, xs].reshape(-1), bits)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, color_type, 0, 0, 1 if interlace else 0))
    if plte is not None:
        out += chunk(b"PLTE", bytes(plte))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    out += chunk(b"IDAT", zlib.compress(bytes(raw), 9))
    return out + chunk(b"IEND", b"")


def ramp(h, w, c, top):
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 7 + y * 13) % (top + 1)
    return np.stack([(base + k * 3) % (top + 1) for k in range(c)], axis=-1)


def mask_binary(h, w, top=255):
    y, x = np.mgrid[0:h, 0:w]
    return (((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(h, w) / 3) ** 2) * top)[..., None]


def mask_instances(h, w):
    m = np.zeros((h, w), int)
    m[1:4, 1:4] = 1
    m[1:4, 4:7] = 2   # touches 1
    m[5:7, 2:6] = 3
    return m[..., None]


# ---- TIFF ---------------------------------------------------------------

TYPES = {1: "B", 3: "H", 4: "I"}


def tiff(pages, big_endian=False):
    """pages: list of dicts with w, h, spp, bits, fmt, photo, planar, comp,
    blocks (list of encoded bytes, strips or tiles), rows (rows per strip) or
    tile (tile side), colormap (list), extra (extra samples list)."""
    e = ">" if big_endian else "<"
    out = bytearray(b"MM\0*" if big_endian else b"II*\0")
    out += struct.pack(e + "I", 0)
    prev_link = 4
    for p in pages:
        offsets = []
        for b in p["blocks"]:
            if len(out) % 2:
                out += b"\0"
            offsets.append(len(out))
            out += b
        entries = {256: (4, [p["w"]]), 257: (4, [p["h"]]), 258: (3, [p["bits"]] * p["spp"]),
                   259: (3, [p.get("comp", 1)]), 262: (3, [p["photo"]]),
                   277: (3, [p["spp"]]), 284: (3, [p.get("planar", 1)]),
                   339: (3, [p.get("fmt", 1)] * p["spp"])}
        if "tile" in p:
            entries[322] = (4, [p["tile"]])
            entries[323] = (4, [p["tile"]])
            entries[324] = (4, offsets)
            entries[325] = (4, [len(b) for b in p["blocks"]])
        else:
            entries[273] = (4, offsets)
            entries[278] = (4, [p["rows"]])
            entries[279] = (4, [len(b) for b in p["blocks"]])
        if "colormap" in p:
            entries[320] = (3, p["colormap"])
        if "extra" in p:
            entries[338] = (3, p["extra"])
        if len(out) % 2:
            out += b"\0"
        # out-of-line values first, then the IFD
        blobs = {}
        for tag, (typ, vals) in sorted(entries.items()):
            data = struct.pack(e + TYPES[typ] * len(vals), *vals)
            if len(data) > 4:
                if len(out) % 2:
                    out += b"\0"
                blobs[tag] = len(out)
                out += data
        if len(out) % 2:
            out += b"\0"
        ifd = len(out)
        struct.pack_into(e + "I", out, prev_link, ifd)
        out += struct.pack(e + "H", len(entries))
        for tag, (typ, vals) in sorted(entries.items()):
            data = struct.pack(e + TYPES[typ] * len(vals), *vals)
            if tag in blobs:
                field = struct.pack(e + "I", blobs[tag])
            else:
                field = data + b"\0" * (4 - len(data))
            out += struct.pack(e + "HHI", tag, typ, len(vals)) + field
        prev_link = len(out)
        out += struct.pack(e + "I", 0)
    return bytes(out)


def packbits(data):
    out = bytearray()
    for i in range(0, len(data), 128):
        part = data[i:i + 128]
        out.append(len(part) - 1)
        out += part
    return bytes(out)


def strips(arr, rows, planar=False):
    """arr [H, W, C] numpy of the file's dtype/endianness -> strip bytes."""
    h = arr.shape[0]
    if planar:
        return [np.ascontiguousarray(arr[y:y + rows, :, c]).tobytes()
                for c in range(arr.shape[2]) for y in range(0, h, rows)]
    return [np.ascontiguousarray(arr[y:y + rows]).tobytes() for y in range(0, h, rows)]


def bits1(arr):
    return [np.packbits(arr[y, :, 0].astype(np.uint8)).tobytes() for y in range(arr.shape[0])]


def page(arr, bits, fmt=1, photo=1, **kw):
    h, w, c = arr.shape
    p = dict(w=w, h=h, spp=c, bits=bits, fmt=fmt, photo=photo, rows=kw.pop("rows", 4))
    p.update(kw)
    if "blocks" not in p:
        p["blocks"] = strips(arr, p["rows"], p.get("planar", 1) == 2)
    return p


def tiles(arr, side):
    h, w, c = arr.shape
    out = []
    for ty in range(0, h, side):
        for tx in range(0, w, side):
            t = np.zeros((side, side, c), arr.dtype)
            blk = arr[ty:ty + side, tx:tx + side]
            t[:blk.shape[0], :blk.shape[1]] = blk
            out.append(t.tobytes())
    return out


def image_files():
    f = {}
    g8 = ramp(6, 9, 1, 255).astype(np.uint8)
    f["grey8.png"] = png(g8, 0, 8)
    f["grey16.png"] = png(ramp(5, 7, 1, 65535), 0, 16)
    f["grey1.png"] = png(ramp(4, 11, 1, 1), 0, 1)
    f["grey2.png"] = png(ramp(4, 5, 1, 3), 0, 2)
    f["grey4-interlaced.png"] = png(ramp(9, 10, 1, 15), 0, 4, interlace=True)
    f["grey-alpha.png"] = png(ramp(4, 4, 2, 255), 4, 8)
    f["rgb8-interlaced.png"] = png(ramp(9, 9, 3, 255), 2, 8, interlace=True)
    f["rgba16.png"] = png(ramp(3, 4, 4, 65535), 6, 16)
    f["palette2-trns.png"] = png(ramp(5, 6, 1, 3), 3, 2, plte=[0, 0, 0, 255, 0, 0, 0, 255, 0, 9, 9, 9],
                                 trns=[0, 128])
    f["grey-trns.png"] = png(ramp(4, 4, 1, 255), 0, 8, trns=[0, 7])
    u16 = ramp(6, 5, 1, 60000).astype("<u2")
    f["u16-strips.tif"] = tiff([page(u16, 16, rows=2)])
    f["u16-be.tif"] = tiff([page(ramp(6, 5, 1, 60000).astype(">u2"), 16, rows=3)], big_endian=True)
    f["f32.tif"] = tiff([page((ramp(4, 6, 1, 99) / 7.0).astype("<f4"), 32, fmt=3)])
    f["f64.tif"] = tiff([page((ramp(3, 3, 1, 9) - 4.5).astype("<f8"), 64, fmt=3)])
    f["i16.tif"] = tiff([page((ramp(4, 4, 1, 100) - 50).astype("<i2"), 16, fmt=2)])
    f["i8-minwhite.tif"] = tiff([page(ramp(4, 4, 1, 100).astype("<i1"), 8, fmt=2, photo=0)])
    b1 = ramp(5, 12, 1, 1)
    f["bits1-minwhite.tif"] = tiff([page(b1, 1, photo=0, rows=1, blocks=bits1(b1))])
    rgb = ramp(4, 5, 3, 255).astype(np.uint8)
    f["rgb-contig.tif"] = tiff([page(rgb, 8, photo=2)])
    f["rgb-planar.tif"] = tiff([page(rgb, 8, photo=2, planar=2, rows=2)])
    rgba = ramp(3, 3, 4, 255).astype(np.uint8)
    f["rgba-extra.tif"] = tiff([page(rgba, 8, photo=2, extra=[2])])
    t8 = ramp(20, 18, 1, 255).astype(np.uint8)
    f["tiled16.tif"] = tiff([page(t8, 8, tile=16, blocks=tiles(t8, 16))])
    pal = ramp(4, 4, 1, 255).astype(np.uint8)
    cmap = [i * 257 for i in range(256)] + [(255 - i) * 257 for i in range(256)] + [0] * 256
    f["palette8.tif"] = tiff([page(pal, 8, photo=3, colormap=cmap)])
    pb = ramp(4, 8, 1, 255).astype(np.uint8)
    f["packbits.tif"] = tiff([page(pb, 8, comp=32773, rows=4, blocks=[b"".join(packbits(r.tobytes()) for r in pb)])])
    f["deflate.tif"] = tiff([page(pb, 8, comp=8, rows=4, blocks=[zlib.compress(pb.tobytes())])])
    s1 = ramp(4, 4, 1, 255).astype(np.uint8)
    f["stack3.tif"] = tiff([page(s1, 8), page(255 - s1, 8), page(s1 // 2, 8)])
    f["hwc-u8.npy"] = npy(ramp(4, 5, 3, 255).astype("u1"))
    f["chw-f4.npy"] = npy(np.transpose(ramp(4, 5, 2, 9), (2, 0, 1)).astype("<f4"))
    return f


def mask_files():
    f = {}
    f["binary.png"] = png(mask_binary(8, 8).astype(np.uint8), 0, 8)
    f["instances.png"] = png(mask_instances(8, 8), 0, 8)
    f["instances16.png"] = png(mask_instances(8, 8) * 1000, 0, 16)
    f["palette-ids.png"] = png(mask_instances(8, 8), 3, 2, plte=[0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    f["classes.tif"] = tiff([page((mask_instances(8, 8) % 3).astype(np.uint8), 8)])
    f["rgb-grey.png"] = png(np.repeat(mask_binary(6, 6), 3, axis=2), 2, 8)
    f["ids-i32.npy"] = npy(mask_instances(6, 7)[..., 0].astype("<i4"))
    f["bool.npy"] = npy(mask_binary(5, 5, 1)[..., 0].astype("|b1"))
    f["float-half.tif"] = tiff([page((mask_binary(4, 4, 1) * 0.5).astype("<f4"), 32, fmt=3)])
    return f


# ---- npy ----------------------------------------------------------------

def npy(arr, version=1, fortran=False):
    descr = arr.dtype.str
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, tuple(arr.shape))
    head_len = 12 if version >= 2 else 10
    pad = (64 - (head_len + len(d) + 1) % 64) % 64
    d = d + " " * pad + "\n"
    out = b"\x93NUMPY" + bytes([version, 0])
    out += struct.pack("<I" if version >= 2 else "<H", len(d))
    return out + d.encode() + (np.asfortranarray(arr) if fortran else arr).tobytes(order="F" if fortran else "C")


def npy_files():
    f = {}
    f["f4-2d.npy"] = npy(ramp(4, 6, 1, 99)[..., 0].astype("<f4"))
    f["f8-1d.npy"] = npy(np.arange(5, dtype="<f8"))
    f["u1-hwc.npy"] = npy(ramp(3, 4, 3, 255).astype("u1"))
    f["i8-4d.npy"] = npy(np.arange(24, dtype="<i8").reshape(1, 2, 3, 4))
    f["u2-v2.npy"] = npy(np.arange(12, dtype="<u2").reshape(3, 4), version=2)
    f["b1.npy"] = npy(np.array([[True, False], [False, True]]))
    f["be-f4.npy"] = npy(np.arange(4, dtype=">f4").reshape(2, 2))
    f["fortran.npy"] = npy(np.arange(6, dtype="<f4").reshape(2, 3), fortran=True)
    f["grey8.png"] = png(ramp(3, 3, 1, 255).astype(np.uint8), 0, 8)
    f["stack2.tif"] = tiff([page(ramp(3, 3, 1, 255).astype(np.uint8), 8)] * 2)
    return f


# ---- safetensors --------------------------------------------------------

def safetensors(tensors, meta=None):
    header, data = {}, bytearray()
    if meta:
        header["__metadata__"] = meta
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(data)


def safetensors_files():
    f = {}
    f["all-dtypes.safetensors"] = safetensors({
        "f32": ("F32", [2, 2], np.arange(4, dtype="<f4").tobytes()),
        "f64": ("F64", [3], np.arange(3, dtype="<f8").tobytes()),
        "f16": ("F16", [2], np.array([1.5, -2], dtype="<f2").tobytes()),
        "bf16": ("BF16", [2], b"\x80\x3f\x00\xc0"),
        "i64": ("I64", [], struct.pack("<q", -7)),
        "i32": ("I32", [2], struct.pack("<ii", 1, -1)),
        "i16": ("I16", [1], struct.pack("<h", 3)),
        "i8": ("I8", [2], b"\x01\xff"),
        "u64": ("U64", [1], struct.pack("<Q", 9)),
        "u32": ("U32", [1], struct.pack("<I", 9)),
        "u16": ("U16", [1], struct.pack("<H", 9)),
        "u8": ("U8", [3], b"\x00\x01\x02"),
        "bool": ("BOOL", [2], b"\x00\x01"),
        "empty": ("F32", [0, 3], b""),
    }, {"format": "test", "note": "x"})
    f["one.safetensors"] = safetensors({"w": ("F32", [1, 1, 3, 3], np.ones(9, "<f4").tobytes())})
    f["no-tensors.safetensors"] = safetensors({}, {"k": "v"})
    return f


# ---- JSON ---------------------------------------------------------------

MODEL_CONFIGS = [
    {"model": "unet", "in_channels": 1, "classes": 1, "depth": 2, "base": 2, "padding": "valid", "norm": "none",
     "upsample": "transpose", "activation": "relu", "leaky_slope": 0.01, "seed": 42},
    {"model": "unet", "in_channels": 3, "classes": 4, "depth": 3, "base": 8, "padding": "same", "norm": "batch",
     "upsample": "bilinear", "activation": "leaky", "leaky_slope": 0.2, "seed": 18446744073709551615},
    {"model": "light", "classes": 6, "norm": "instance"},
    {"model": "fcn", "in_channels": 1, "base": 16},
    {"model": "unet", "depth": 5},
]

OPTIM = [
    (0, {"optimizer": "sgd", "lr": 0.01, "momentum": 0.99, "nesterov": False, "weight_decay": 0, "accumulate": 1}),
    (0, {"optimizer": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0}),
    (0, {"optimizer": "adamw", "lr": 0.001, "weight_decay": 0.01, "accumulate": 4}),
    (1, {"schedule": "plateau", "factor": 0.1, "patience": 10, "threshold": 0.0001, "cooldown": 0, "min_lr": 0,
         "mode": "min"}),
    (1, {"schedule": "cosine", "t_max": 100, "eta_min": 0}),
    (1, {"schedule": "exponential", "gamma": 0.999}),
    (1, {"schedule": "constant"}),
]


def json_bytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# ---- dataset trees ------------------------------------------------------

NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_.-"
EXTS = [".png", ".tif", ".tiff", ".npy", ".PNG", ".TIF", "", ".txt"]


def record(op, stem, ext, content):
    name = bytes(NAME_CHARS.index(c) for c in stem) + bytes([EXTS.index(ext)])
    return bytes([op, len(name)]) + name + struct.pack("<H", len(content)) + content


def link_target(text):
    chars = "abcdefghijklmnopqrstuvwxyz0123456789_.-/"
    return bytes(chars.index(c) for c in text)


def dataset_files(imgs, masks):
    f = {}
    a, m = imgs["grey8.png"], png(mask_binary(6, 9).astype(np.uint8), 0, 8)
    f["pair.bin"] = record(0, "a", ".png", a) + record(1, "a", ".png", m)
    f["two-pairs-labels.bin"] = (record(0, "a", ".png", a) + record(3, "a", ".tif", m)
                                 + record(0, "b", ".tif", imgs["u16-strips.tif"])
                                 + record(3, "b", ".png", png(mask_binary(6, 5).astype(np.uint8), 0, 8)))
    f["missing-partner.bin"] = record(0, "a", ".png", a) + record(0, "b", ".png", a) + record(1, "a", ".png", m)
    f["size-mismatch.bin"] = record(0, "a", ".png", a) + record(1, "a", ".png", masks["binary.png"])
    st_img = imgs["stack3.tif"]
    st_mask = tiff([page(mask_binary(4, 4).astype(np.uint8), 8)] * 3)
    f["stacks.bin"] = record(2, "train-volume", ".tif", st_img) + record(2, "train-labels", ".tif", st_mask)
    f["links-fifo.bin"] = (record(0, "a", ".png", a) + record(1, "a", ".png", m)
                           + record(4, "b", ".png", link_target("a.png"))
                           + record(4, "loop", ".png", link_target("loop.png"))
                           + record(6, "b", ".png", b"") + record(5, "sub", "", b"")
                           + record(0, ".hidden", ".png", b"x") + record(1, "c", ".txt", b"text"))
    f["page-pairs.bin"] = record(0, "s", ".tif", st_img) + record(1, "s", ".tif", st_mask)
    return f


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    unet = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "corpus")
    sets = {}
    imgs, masks = image_files(), mask_files()
    sets["image"] = imgs
    sets["labels"] = masks
    sets["npy"] = npy_files()
    sets["safetensors"] = safetensors_files()
    sets["model-config"] = {"c%d.json" % i: json_bytes(c) for i, c in enumerate(MODEL_CONFIGS)}
    sets["optim-config"] = {"o%d.bin" % i: bytes([k]) + json_bytes(c) for i, (k, c) in enumerate(OPTIM)}
    sets["optim-config"]["state.bin"] = bytes([2]) + json_bytes(OPTIM[3][1]) + b"\n" + json_bytes(
        {"base_lr": 0.01, "lr": 0.001, "steps": 120, "epochs": 12, "best": 0.25, "bad_epochs": 3,
         "cooldown_left": 0})
    sets["optim-config"]["state-inf.bin"] = bytes([2]) + json_bytes(OPTIM[4][1]) + b"\n" + json_bytes(
        {"base_lr": 0.01, "lr": 0.01, "steps": 0, "epochs": 0, "best": None, "bad_epochs": 0, "cooldown_left": 0})
    aug = {}
    aug["default.json"] = subprocess.run([unet, "augment", "--print-config"], check=True,
                                         capture_output=True).stdout
    aug["paper.json"] = subprocess.run([unet, "augment", "--paper", "--print-config"], check=True,
                                       capture_output=True).stdout
    aug["mixed.json"] = json_bytes({"intensity_max": 255, "transforms": [
        {"type": "elastic", "p": 1, "alpha": 30, "sigma": 4, "alpha_affine": 3, "blur": "gaussian"},
        {"type": "gauss_noise", "p": 0.5, "var_min": 5, "var_max": 20, "per_channel": False},
        {"type": "multiplicative_noise", "p": 0.5, "mult_min": 0.9, "mult_max": 1.1},
        {"type": "brightness_contrast", "p": 1, "brightness": 0.2, "contrast": 0.2},
        {"type": "pad_if_needed", "min_width": 40, "min_height": 30, "p": 1},
        {"type": "grid_elastic", "p": 1, "grid": 4, "grid_sd": 3}]})
    sets["augment-config"] = aug
    ck = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in [("unet-d2.safetensors", ["--depth", "2", "--base", "2"]),
                           ("unet-bn.safetensors", ["--depth", "2", "--base", "2", "--norm", "batch",
                                                    "--upsample", "bilinear"]),
                           ("fcn.safetensors", ["--model", "fcn", "--base", "2", "--classes", "2"])]:
            path = os.path.join(tmp, name)
            subprocess.run([unet, "init", "--out", path] + args, check=True, capture_output=True)
            ck[name] = open(path, "rb").read()
    ck["with-sgd-state.safetensors"] = add_optimizer_state(ck["unet-d2.safetensors"])
    sets["checkpoint"] = ck
    sets["dataset"] = dataset_files(imgs, masks)
    for target, files in sets.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
        print("%-15s %2d files, %6d bytes" % (target, len(files), sum(len(v) for v in files.values())))


def add_optimizer_state(blob):
    """The same checkpoint with SGD momentum buffers and optimizer metadata."""
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    meta = header.pop("__metadata__")
    tensors = {}
    for name, t in header.items():
        tensors[name] = (t["dtype"], t["shape"], data[t["data_offsets"][0]:t["data_offsets"][1]])
    for name, (dt, shape, raw) in list(tensors.items()):
        tensors["optimizer.%s.momentum_buffer" % name] = (dt, shape, bytes(len(raw)))
    meta["optimizer"] = json.dumps({"config": OPTIM[0][1], "step": 3, "lr": 0.01}, separators=(",", ":"))
    return safetensors(tensors, meta)


if __name__ == "__main__":
    main()
