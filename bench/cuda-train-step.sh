#!/bin/sh
# cuda-train-step.sh - our CUDA train step (default U-Net, 572x572, batch 1 and 4)
# and 512x512 prediction beside PyTorch eager on the same GPU, in TF32, fp32 and
# bf16 (ours: --precision bf16; PyTorch: autocast to bfloat16, both with fp32
# parameters, gradients and optimizer state).
#
#   bench/cuda-train-step.sh [BUILD_DIR]        (default: build)
#   STEPS=50 bench/cuda-train-step.sh
#
# Needs an NVIDIA GPU, a build with the CUDA backend (unet devices lists the
# GPU), python3-torch with CUDA for the anchor, and the `unet bench` command:
#   unet bench train-step --device cuda --precision P --model unet --size 572
#                         --batch B --steps S --json -> {"ms_per_step": median ms, ...}
#   unet bench train-step ... --warmup 2 --cuda-graphs on   (the graph rows)
#   unet bench predict --device cuda --precision P --model unet --size 512
#                      --tile 572 --steps S --json   -> {"ms_per_image": median ms, ...}
# (--tile 572: the anchor's tiles; unet's own default for 512 x 512 is one
# tile of 700)
# (a key "ms" is accepted for either). The precision is --precision tf32|fp32|bf16
# on our side (UNET_CUDA_TF32 is unset here: it would turn tf32 rows into fp32)
# and torch.backends.cudnn.allow_tf32 (--tf32 1|0) or --autocast bf16 on
# PyTorch's. "vs torch" is PyTorch's time over ours (above 1: we are faster).
# TFLOP/s counts the convolutions only (bench/torch-unet-bench.py --mode flops),
# the same count for both sides and every precision.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
unet=${UNET:-$build/src/cli/unet}
py=${PYTHON:-/usr/bin/python3}
steps=${STEPS:-20}
torch_bench="$here/torch-unet-bench.py"

die() { echo "cuda-train-step: $*" >&2; exit 1; }

[ -x "$unet" ] || die "no unet executable at $unet (build first, or set UNET=)"
"$unet" devices | grep -q '^cuda:0 ' || die "unet sees no CUDA device: $("$unet" devices | grep '^cuda' || true)"
"$unet" bench --help >/dev/null 2>&1 || die "this unet has no 'bench' command (it comes with the model/trainer work)"
"$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
    die "PyTorch in $py sees no CUDA device (the anchor needs it)"

# json_get FILE KEY... : first key present, as a number
json_get() {
    "$py" - "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    if k in d:
        print(d[k]); break
else:
    sys.exit("missing %s in %s" % ("/".join(sys.argv[2:]), sys.argv[1]))
EOF
}

unset UNET_CUDA_TF32
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo unknown)"
"$unet" devices | sed 's/^/  /'
echo "PyTorch: $("$py" -c 'import torch; print(torch.__version__, "cuDNN", torch.backends.cudnn.version())')"
echo
printf '%-28s %-8s %10s %10s %9s %9s\n' "case" "side" "ms" "images/s" "TFLOP/s" "vs torch"

row() { # label side ms flops images [torch_ms]: one row; with torch_ms, PyTorch's time over ms
    "$py" -c 'import sys
label, side, ms, flops, images = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
vs = "%.2fx" % (float(sys.argv[6]) / ms) if len(sys.argv) > 6 else ""
print("%-28s %-8s %10.2f %10.2f %9.1f %9s" % (label, side, ms, images * 1e3 / ms, flops / (ms * 1e-3) / 1e12, vs))' "$@"
}

# torch_opts MODE: PyTorch's switches for our --precision MODE
torch_opts() {
    case $1 in
    tf32) echo "--tf32 1" ;;
    fp32) echo "--tf32 0" ;;
    bf16) echo "--tf32 1 --autocast bf16" ;;
    esac
}

for mode in tf32 fp32 bf16; do
    topts=$(torch_opts $mode)
    for batch in 1 4; do
        "$py" "$torch_bench" --mode flops --size 572 --batch $batch >"$tmp/flops.json"
        flops=$(json_get "$tmp/flops.json" flops)
        "$unet" bench train-step --device cuda --precision $mode --model unet --size 572 \
            --batch $batch --steps "$steps" --json >"$tmp/ours.json"
        # shellcheck disable=SC2086 # topts is a list of options
        "$py" "$torch_bench" --mode train --size 572 --batch $batch --steps "$steps" \
            $topts >"$tmp/torch.json"
        torch_ms=$(json_get "$tmp/torch.json" ms)
        row "train unet b$batch $mode (unet)" 572 "$(json_get "$tmp/ours.json" ms_per_step ms)" "$flops" $batch "$torch_ms"
        # the same step replayed as one CUDA graph (captured on the second warm-up step)
        "$unet" bench train-step --device cuda --precision $mode --model unet --size 572 \
            --batch $batch --steps "$steps" --warmup 2 --cuda-graphs on --json >"$tmp/graph.json"
        row "train unet b$batch $mode (unet graph)" 572 "$(json_get "$tmp/graph.json" ms_per_step ms)" "$flops" $batch "$torch_ms"
        row "train unet b$batch $mode (torch)" 572 "$torch_ms" "$flops" $batch
    done
    "$unet" bench predict --device cuda --precision $mode --model unet --size 512 --tile 572 \
        --steps "$steps" --json >"$tmp/ours.json"
    # shellcheck disable=SC2086
    "$py" "$torch_bench" --mode predict --size 512 --steps "$steps" $topts >"$tmp/torch.json"
    flops=$(json_get "$tmp/torch.json" flops)
    torch_ms=$(json_get "$tmp/torch.json" ms)
    row "predict 512 $mode (unet)" 512 "$(json_get "$tmp/ours.json" ms_per_image ms)" "$flops" 1 "$torch_ms"
    row "predict 512 $mode (torch)" 512 "$torch_ms" "$flops" 1
done
