#!/bin/sh
# test-valgrind.sh - short runs of the main commands under valgrind memcheck:
# no invalid reads or writes, no use of uninitialised values, no definite
# leaks (valgrind exits 99 on any). Skipped (77) without valgrind and in
# sanitizer builds, which valgrind cannot run.
set -u
UNET=${1:-${UNET_EXE:?UNET_EXE must name the unet executable}}
command -v valgrind >/dev/null 2>&1 || { echo "valgrind is not installed"; exit 77; }
if ldd "$UNET" 2>/dev/null | grep -q 'lib[at]san\|libubsan'; then
    echo "sanitizer build: valgrind cannot run it"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/unet-valgrind.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failures=0

vg() { # NAME STATUS ARGS...: unet ARGS under memcheck must exit STATUS
    name=$1
    want=$2
    shift 2
    valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
        --error-exitcode=99 --log-file="$TMP/$name.vg" "$UNET" "$@" >"$TMP/$name.out" 2>&1
    rc=$?
    if [ "$rc" -eq 99 ] || [ -s "$TMP/$name.vg" ]; then
        echo "FAIL: $name: valgrind reports errors:" >&2
        head -40 "$TMP/$name.vg" >&2
        failures=$((failures + 1))
    elif [ "$rc" -ne "$want" ]; then
        echo "FAIL: $name: unet $* exited $rc, expected $want: $(tail -3 "$TMP/$name.out")" >&2
        failures=$((failures + 1))
    else
        echo "ok - $name: clean under memcheck"
    fi
}

"$UNET" sample-data --out "$TMP/data" --count 3 --size 40 --seed 2 >/dev/null || exit 1
vg init 0 init --depth 2 --base 2 --padding same --out "$TMP/ck.safetensors"
vg augment 0 augment "$TMP/data/images/000.png" "$TMP/data/masks/000.png" --out "$TMP/aug" --count 2
vg weightmap 0 weightmap "$TMP/data/masks/001.png" --out "$TMP/w.npy"
vg train 0 train --data "$TMP/data" --depth 2 --base 2 --padding same --epochs 2 --steps-per-epoch 2 \
    --lr 0.01 --device reference --workers 1 --quiet --out "$TMP/run"
vg resume 0 train --resume "$TMP/run" --epochs 3 --quiet
vg predict 0 predict --model "$TMP/run/best.safetensors" --out "$TMP/pred" --device reference --quiet \
    "$TMP/data/images/002.png"
vg info 0 info "$TMP/run/last.safetensors"
vg bad-input 1 weightmap "$TMP/ck.safetensors" --out "$TMP/x.png"
vg bad-checkpoint 1 predict --model "$TMP/data/images/000.png" --out "$TMP/pred2" --device reference \
    "$TMP/data/images/002.png"
[ "$failures" -eq 0 ]
