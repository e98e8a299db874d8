#!/bin/sh
# test-bench.sh - `unet bench`: every benchmark runs on a tiny problem and
# reports its figures as text and JSON; bad usage is exit 2 with a message.
set -u
UNET=${UNET_EXE:?UNET_EXE must name the unet executable}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/unet-cli-bench.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# expect STATUS PATTERN ARGS...: exit status and a fixed string in stdout+stderr
expect() {
    want=$1
    pattern=$2
    shift 2
    "$UNET" "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    [ "$got" -eq "$want" ] || fail "unet $* exited $got, expected $want: $(cat "$TMP/err")"
    grep -qF -- "$pattern" "$TMP/out" "$TMP/err" || fail "unet $*: no '$pattern' in: $(cat "$TMP/out" "$TMP/err")"
}

tiny="--depth 2 --base 2 --steps 2 --warmup 1 --device cpu --threads 1"
for key in '"command":"train-step"' '"seconds_per_step":' '"ms_per_step":' '"gflops":' \
           '"peak_rss_mb":' '"images_per_second":' '"activation_peak_mb":' '"loss":' \
           '"out":4' '"batch":2'; do
    expect 0 "$key" bench train-step $tiny --size 20 --batch 2 --json
done
# 2 images of 20x20 -> 4x4: 3 x forward convolution FLOPs of both
expect 0 '"step_gflop":0.000' bench train-step $tiny --size 20 --batch 2 --json
expect 0 "median" bench forward $tiny --size 36
expect 0 "train-step: unet on cpu, batch 1 of 20x20 -> 4x4" bench train-step $tiny --size 20
expect 0 "per-op profile over 2 steps" bench train-step $tiny --size 20 --profile
expect 0 "conv3 fwd" bench train-step $tiny --size 20 --profile --json
expect 0 '"ms_per_image":' bench predict $tiny --size 50 --json
expect 0 '"transforms":8' bench predict $tiny --size 50 --tta --json
expect 0 '"tiles":16' bench predict $tiny --size 50 --tile 32 --json
expect 0 "1 x 1 tiles of 66 -> 50" bench predict $tiny --size 50
expect 0 '"ms_per_step":' bench forward --model light --depth 2 --base 4 --size 16 --steps 1 --json --device reference
expect 0 '"cells":' bench weightmap --size 64 --steps 2 --json
expect 0 "weight map" bench augment --size 64 --steps 2
expect 0 '"pipeline":"paper"' bench augment --size 64 --steps 2 --paper --json

expect 2 "unknown benchmark 'fly'" bench fly
expect 2 "usage: unet bench" bench
expect 0 "usage: unet bench" bench --help
expect 2 "21 is not a valid input side of this unet model; the nearest are 20 and 22" \
    bench forward $tiny --size 21
expect 2 "unknown option '--tta'" bench forward $tiny --tta
expect 2 "'0' is not a valid value for --steps" bench forward --steps 0
expect 2 "option '--size' needs a value" bench forward --size
expect 1 "tile 31 is not a valid input side" bench predict $tiny --size 50 --tile 31
expect 1 "unknown device 'tpu'" bench forward --device tpu

# precision: the CPU computes fp32 whatever is asked short of bf16, which needs CUDA
expect 0 '"precision":"fp32"' bench train-step $tiny --size 20 --precision fp32 --json
expect 0 '"precision":"fp32"' bench forward $tiny --size 20 --precision tf32 --json
expect 0 "fp32 convolutions" bench forward $tiny --size 20
expect 1 "bench: bf16 needs the CUDA backend; use --precision fp32 or --device cuda" \
    bench train-step $tiny --size 20 --precision bf16
expect 2 "'fp16' is not a valid value for --precision (fp32, tf32 or bf16)" \
    bench forward $tiny --precision fp16
expect 2 "unknown option '--precision'" bench weightmap --precision fp32

[ "$failures" -eq 0 ] && echo "cli-bench: all checks passed"
[ "$failures" -eq 0 ]
