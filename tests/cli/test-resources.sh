#!/bin/sh
# test-resources.sh - resource faults:
#  - out of memory (address space limited with ulimit -v) for a huge model, a
#    huge training batch/tile, a huge prediction tile and a huge mask gives a
#    message saying what to lower, exit 1, no crash;
#  - `unet predict` on a large image streams tiles: its peak RSS stays below
#    the whole-image maps it must hold (input, probabilities, labels, mask)
#    plus a margin of 200 MB (UNET_BIG_SIDE sets the side, default 3000; 8000
#    for the full check);
#  - Ctrl-C (SIGINT) ends a long prediction or a training within a second.
set -u
UNET=${UNET_EXE:?UNET_EXE must name the unet executable}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/unet-resources.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
SIDE=${UNET_BIG_SIDE:-3000}
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

"$UNET" sample-data --out "$TMP/data" --count 2 --size 600 --seed 1 >/dev/null || exit 1
"$UNET" init --depth 2 --base 4 --padding same --out "$TMP/small.safetensors" >/dev/null || exit 1
"$UNET" init --depth 5 --base 64 --padding same --out "$TMP/paper.safetensors" >/dev/null || exit 1
"$PY" - "$TMP" "$SIDE" <<'EOF' || exit 1
import struct, sys, zlib
tmp, side = sys.argv[1], int(sys.argv[2])
def chunk(k, d):
    return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xffffffff)
def png(path, w, h, row):
    raw = b"".join(b"\0" + row(y) for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
# a large grey image with structure; a large mask of small cells
png(tmp + "/big.png", side, side, lambda y: bytes(((x * 7 + y * 3) ^ (x * y >> 6)) & 255 for x in range(side)))
png(tmp + "/bigmask.png", 6000, 6000,
    lambda y: (b"\0" if y % 16 < 2 else b"") * 0 + bytes(0 if (y % 16 < 2 or x % 16 < 2) else 255 for x in range(6000)))
EOF

# ---- out of memory under an address-space limit --------------------------------
LIMIT_KB=1500000
# sanitizer builds reserve terabytes of address space and keep freed memory in
# quarantine: neither ulimit -v nor their RSS says anything about unet
plain_build=0
(ulimit -v $LIMIT_KB && "$UNET" --version) >/dev/null 2>&1 && plain_build=1
if [ $plain_build = 1 ]; then
    oom() { # NAME PATTERN ARGS...: under the limit, exit 1 with PATTERN in the message
        name=$1 pattern=$2
        shift 2
        (ulimit -v $LIMIT_KB; exec "$UNET" "$@") >"$TMP/out" 2>&1
        rc=$?
        if [ "$rc" -ne 1 ]; then
            fail "$name: exit status $rc, expected 1: $(tail -3 "$TMP/out")"
        elif ! grep -qE -- "$pattern" "$TMP/out"; then
            fail "$name: the message does not say what to lower (/$pattern/): $(cat "$TMP/out")"
        else
            echo "ok - $name: $(grep -E -- "$pattern" "$TMP/out" | head -1 | cut -c1-220)"
        fi
    }
    oom init-huge-model "smaller --base or --depth" init --depth 6 --base 256 --out "$TMP/x.safetensors"
    oom train-huge-batch "--batch, --tile" train --data "$TMP/data" --depth 5 --base 64 --tile 572 --batch 8 \
        --epochs 1 --lr 0.01 --device cpu --threads 1 --workers 1 --quiet --out "$TMP/run-oom"
    oom predict-huge-tile "--batch, --tile" predict --model "$TMP/paper.safetensors" --tile 2048 \
        --out "$TMP/pred-oom" --device cpu --threads 1 --quiet "$TMP/big.png"
    oom weightmap-huge-mask "crop or downscale" weightmap "$TMP/bigmask.png" --out "$TMP/w.npy" \
        --d1 "$TMP/d1.npy" --d2 "$TMP/d2.npy"
else
    echo "skip: this build cannot run under ulimit -v (sanitizers reserve the address space)"
fi

# ---- bounded memory of a large prediction --------------------------------------
if [ $plain_build = 0 ]; then
    echo "skip: sanitizer build; the peak RSS of predict is not meaningful"
elif [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%M" -o "$TMP/rss" "$UNET" predict --model "$TMP/small.safetensors" --out "$TMP/pred" \
        --device cpu --quiet "$TMP/big.png" >"$TMP/out" 2>&1 || fail "predict of the large image failed: $(cat "$TMP/out")"
    peak_kb=$(tail -1 "$TMP/rss")
    # whole-image maps: float input, float probabilities, int32 labels, 8-bit mask
    maps_kb=$(( SIDE * SIDE * 13 / 1024 ))
    # + 200 MB: the process, the CPU backend's kept blocks and the tiles in
    # flight (about 140 MB here, the same at 3000 and 4500 pixels a side)
    limit_kb=$(( maps_kb + 200 * 1024 ))
    if [ -n "$peak_kb" ] && [ "$peak_kb" -le "$limit_kb" ]; then
        echo "ok - predict ${SIDE}x${SIDE}: peak RSS $((peak_kb / 1024)) MB, whole-image maps $((maps_kb / 1024)) MB, limit $((limit_kb / 1024)) MB"
    else
        fail "predict ${SIDE}x${SIDE}: peak RSS ${peak_kb:-?} kB is above the maps ($maps_kb kB) + 200 MB"
    fi
else
    echo "skip: /usr/bin/time is missing; the peak RSS of predict is not measured"
fi

# ---- cancelling ----------------------------------------------------------------
# A non-interactive shell starts background jobs with SIGINT ignored: env
# resets it, so a SIGINT before unet installs its handler kills it (exit 130)
# and that attempt is repeated with a longer wait.
# A sanitizer build is usually unoptimised too (a debug up-convolution takes
# seconds): there the check is that unet stops, not how fast.
bound_ms=1000
[ $plain_build = 1 ] || bound_ms=30000
cancel() { # NAME AFTER_S PATTERN ARGS...: SIGINT after AFTER_S seconds ends it within a second,
           # saying PATTERN (it was stopped, not killed)
    name=$1 after=$2 said=$3
    shift 3
    for attempt in 1 2 3; do
        env --default-signal=INT "$UNET" "$@" >"$TMP/cancel.out" 2>&1 &
        pid=$!
        sleep "$after"
        if ! kill -0 $pid 2>/dev/null; then
            fail "$name: finished before it could be cancelled; give it more work"
            return
        fi
        t0=$(now_ms)
        kill -INT $pid
        wait $pid
        rc=$?
        ms=$(( $(now_ms) - t0 ))
        [ $rc -eq 130 ] || break
        echo "  $name: SIGINT came before unet's handler (attempt $attempt); waiting longer"
        after=$(awk -v a="$after" 'BEGIN { print a * 2 }')
    done
    if [ "$ms" -gt $bound_ms ]; then
        fail "$name: took $ms ms to stop after SIGINT"
    elif ! grep -qE "$said" "$TMP/cancel.out"; then
        fail "$name: not stopped by unet (exit $rc): $(cat "$TMP/cancel.out")"
    elif grep -qE 'AddressSanitizer|runtime error|Segmentation' "$TMP/cancel.out"; then
        fail "$name: crashed on SIGINT: $(cat "$TMP/cancel.out")"
    else
        echo "ok - $name: stopped $ms ms after SIGINT (exit $rc): $(grep -iE 'interrupt|stop|cancel' "$TMP/cancel.out" | head -1)"
    fi
}
# one 960-pixel tile of a U-Net of base 32, eight times (TTA): over ten seconds
# of work even on an idle machine, each layer well under one second in an
# optimised build
"$UNET" init --depth 5 --base 32 --padding same --out "$TMP/mid.safetensors" >/dev/null || exit 1
cancel predict 1.5 "cancelled" predict --model "$TMP/mid.safetensors" --tile 960 --tta --out "$TMP/pred-cancel" \
    --device cpu --threads 2 "$TMP/data/images/000.png"
[ -e "$TMP/pred-cancel" ] && [ -n "$(find "$TMP/pred-cancel" -name '*.tmp-*')" ] && fail "predict left temporary files"
# training stops between steps (a step here takes well under a second)
cancel train 3 "stopping after the current step" train --data "$TMP/data" --depth 3 --base 8 --padding same --tile 128 --epochs 500 --lr 0.01 \
    --device cpu --threads 1 --quiet --out "$TMP/run-cancel"
if [ -f "$TMP/run-cancel/last.safetensors" ]; then
    "$UNET" info "$TMP/run-cancel/last.safetensors" >/dev/null 2>&1 || fail "the cancelled training's checkpoint does not load"
else
    fail "the cancelled training left no last.safetensors"
fi

[ "$failures" -eq 0 ]
