#!/bin/sh
# train.sh - training to a validation score, end to end, on the CPU: the
# issue's target (a small same-padding U-Net on generated EM-like images, held-
# out validation) and short runs on the shared real datasets. Figures: the best
# validation Dice / V_rand, training images/s and the share of step time the
# compute thread waited for data, beside two anchors from the same invocation:
#   - global-threshold segmentations of the same validation images (Otsu's
#     threshold, and the best single threshold chosen with the masks);
#   - PyTorch 1.13 on the CPU training the same network (tests/torch_models.py)
#     at the same tile size and thread count, images/s.
#
#   bench/train.sh [BUILD_DIR]          (default: build)
#   THREADS=2 EPOCHS=20 bench/train.sh
#   REAL=0 bench/train.sh               (generated data only)
#   GEN=0 UNET_SHARED_DATA=/path/to/shared/data bench/train.sh   (real data only)
# The real datasets are looked for where the tests look (../shared/data beside
# the source tree) unless UNET_SHARED_DATA says otherwise.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
unet=${UNET:-$build/src/cli/unet}
py=${PYTHON:-/usr/bin/python3}
threads=${THREADS:-2}
epochs=${EPOCHS:-20}
shared=${UNET_SHARED_DATA:-$here/../../shared/data}
real=${REAL:-1}
gen=${GEN:-1}

die() { echo "train-bench: $*" >&2; exit 1; }
[ -x "$unet" ] || die "no unet executable at $unet (build first, or set UNET=)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/unet-train-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# anchor: thresholds on the images named in RUN/val-best of DATA
thresholds() {
    "$py" - "$1" "$2" <<'PY'
import glob, os, sys
import cv2, numpy as np
data, run = sys.argv[1], sys.argv[2]
names = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(run + "/val-best/*.png"))
def find(folder, stem):
    for p in glob.glob(os.path.join(data, folder, stem + ".*")):
        return p
otsu, best = [], np.zeros(64)
for n in names:
    im = cv2.imread(find("images", n), cv2.IMREAD_UNCHANGED).astype(np.float64)
    if im.ndim == 3:
        im = im[..., :3].mean(axis=2)
    im = (im - im.min()) / max(im.max() - im.min(), 1e-12)
    m = cv2.imread(find("masks", n), cv2.IMREAD_UNCHANGED)
    m = (m[..., 0] if m.ndim == 3 else m) > (int(m.max()) + int(m.min())) / 2
    dice = lambda p: 2.0 * (p & m).sum() / max(p.sum() + m.sum(), 1)
    t, _ = cv2.threshold((im * 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    otsu.append(max(dice(im * 255 > t), dice(im * 255 <= t)))  # either polarity
    best += [max(dice(im > k / 64), dice(im <= k / 64)) for k in range(64)]
print("threshold anchor on the %d validation images: Otsu Dice %.4f, best global threshold Dice %.4f"
      % (len(names), np.mean(otsu), best.max() / max(len(names), 1)))
PY
}

# anchor: PyTorch training steps of the same network, images/s
torch_anchor() { # depth base tile channels
    "$py" - "$here/../tests" "$1" "$2" "$3" "$4" "$threads" <<'PY' 2>/dev/null || echo "PyTorch anchor: python3-torch unavailable"
import sys, time, statistics
sys.path.insert(0, sys.argv[1])
import torch, torch.nn.functional as F, torch_models
depth, base, tile, ch, threads = map(int, sys.argv[2:7])
torch.set_num_threads(threads)
torch.manual_seed(0)
m = torch_models.build_model(torch_models.config("unet", depth=depth, base=base, padding="same", in_channels=ch))
x = torch.rand(1, ch, tile, tile)
t = (torch.rand(1, 1, tile, tile) > 0.5).float()
opt = torch.optim.Adam(m.parameters(), lr=1e-3)
def step():
    opt.zero_grad()
    F.binary_cross_entropy_with_logits(m(x), t).backward()
    opt.step()
for _ in range(3):
    step()
ts = []
for _ in range(20):
    t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
print("PyTorch %s anchor, same network and tile, %d threads: %.1f images/s" % (torch.__version__, threads, 1 / statistics.median(ts)))
PY
}

run() { # name data out args...
    name=$1; data=$2; out=$3; shift 3
    start=$(date +%s)
    "$unet" train --data "$data" --out "$out" --threads "$threads" --quiet "$@" >"$out.log" 2>&1 ||
        { cat "$out.log"; die "$name: unet train failed"; }
    end=$(date +%s)
    echo "== $name ($((end - start)) s)"
    grep -E '^best epoch|^training throughput|early stop' "$out.log" | sed 's/^/  /'
}

if [ "$gen" = 1 ]; then
    "$unet" sample-data --out "$tmp/gen-train" --count 16 --size 128 --seed 1 >/dev/null
    "$unet" sample-data --out "$tmp/gen-val" --count 6 --size 128 --seed 2 >/dev/null
    small="--depth 3 --base 8 --padding same --tile 128 --epochs $epochs --steps-per-epoch 50"
    small="$small --patience 10 --seed 2"
    run "generated EM-like 128 px, unet base 8 depth 3 same padding, Adam 3e-3" "$tmp/gen-train" \
        "$tmp/gen-adam" --val "$tmp/gen-val" $small --optimizer adam --lr 0.003
    echo "  $(thresholds "$tmp/gen-val" "$tmp/gen-adam")"
    echo "  $(torch_anchor 3 8 128 1)"
    run "same data and net, the paper's SGD (momentum 0.99) with the LR from the range test" \
        "$tmp/gen-train" "$tmp/gen-sgd" --val "$tmp/gen-val" $small
    grep -F 'LR range test' "$tmp/gen-sgd/log.txt" | sed 's/^[0-9: -]*/  /'
fi
if [ "$real" = 1 ] && [ ! -d "$shared/usiigaci-phc" ]; then
    echo "== real datasets skipped: none at $shared (set UNET_SHARED_DATA)"
fi

if [ "$real" = 1 ] && [ -d "$shared/usiigaci-phc" ]; then
    run "usiigaci-phc (16-bit phase contrast, 1024 px), base 8 depth 4, tile 256, Adam 1e-3" \
        "$shared/usiigaci-phc" "$tmp/phc" --depth 4 --base 8 --padding same --tile 256 \
        --optimizer adam --lr 0.001 --epochs 8 --steps-per-epoch 40 --seed 1
    echo "  $(thresholds "$shared/usiigaci-phc" "$tmp/phc")"
    echo "  $(torch_anchor 4 8 256 1)"
fi
if [ "$real" = 1 ] && [ -d "$shared/dsb2018-nuclei" ]; then
    run "dsb2018-nuclei (58 mixed-size pairs, grey), base 8 depth 4, tile 128, Adam 1e-3" \
        "$shared/dsb2018-nuclei" "$tmp/dsb" --color grey --depth 4 --base 8 --padding same \
        --tile 128 --optimizer adam --lr 0.001 --epochs 10 --steps-per-epoch 40 --seed 1
    echo "  $(thresholds "$shared/dsb2018-nuclei" "$tmp/dsb")"
    echo "  $(torch_anchor 4 8 128 1)"
fi
