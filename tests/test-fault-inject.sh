#!/bin/sh
# test-fault-inject.sh - a write, fsync, close or rename that fails (full disk,
# I/O error) gives a clear message naming the file and the system error, a
# non-zero exit, no crash, no temporary file left behind, and the previous file
# unchanged. The failures are injected by tests/fault-inject.c (LD_PRELOAD,
# path given as $1); each case checks the shim's own announcement so it cannot
# pass without the fault having happened.
set -u
UNET=${UNET_EXE:?UNET_EXE must name the unet executable}
SHIM=${1:?usage: test-fault-inject.sh FAULT_INJECT_SO}
[ -f "$SHIM" ] || { echo "no shim at $SHIM" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/unet-fault.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
# ASan wants its runtime first in the library list; the shim comes first here
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
failures=0
cases=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

"$UNET" sample-data --out "$TMP/data" --count 1 --size 64 >/dev/null || fail "sample-data failed"
IMG=$TMP/data/images/000.png
MASK=$TMP/data/masks/000.png

# fault NAME OP ERRNO AFTER TARGET COMMAND...: TARGET holds a good file before
# (made by COMMAND without faults); with the fault, COMMAND must fail cleanly.
fault() {
    name=$1 op=$2 errname=$3 after=$4 target=$5
    shift 5
    cases=$((cases + 1))
    rm -rf "$target"
    "$@" >/dev/null 2>"$TMP/err" || { fail "$name: the command fails without a fault: $(cat "$TMP/err")"; return; }
    cp -R "$target" "$TMP/before"
    UNET_FAULT_OP=$op UNET_FAULT_ERRNO=$errname UNET_FAULT_AFTER=$after LD_PRELOAD=$SHIM \
        "$@" >/dev/null 2>"$TMP/err"
    rc=$?
    case $errname in
        ENOSPC) text="No space left on device" ;;
        EIO) text="Input/output error" ;;
        *) text="Disk quota exceeded" ;;
    esac
    base=$(basename "$target")
    if ! grep -q "^fault-inject: " "$TMP/err"; then
        fail "$name: the fault was never injected (the shim saw no matching $op)"
    elif [ "$rc" -ne 1 ]; then
        fail "$name: exit status $rc, expected 1: $(cat "$TMP/err")"
    elif ! grep -v "^fault-inject: " "$TMP/err" | grep -qF "$text"; then
        fail "$name: the message does not give the system error '$text': $(cat "$TMP/err")"
    elif ! grep -v "^fault-inject: " "$TMP/err" | grep -q "unet [a-z-]*: .*$base"; then
        fail "$name: the message does not name $base: $(cat "$TMP/err")"
    elif ! diff -r "$TMP/before" "$target" >/dev/null 2>&1; then
        fail "$name: $target changed although the write failed"
    elif [ -n "$(find "$(dirname "$target")" -name "*.tmp-*")" ]; then
        fail "$name: temporary files left: $(find "$(dirname "$target")" -name '*.tmp-*')"
    else
        echo "ok $cases - $name: $(grep -v '^fault-inject: ' "$TMP/err" | head -1)"
    fi
    rm -rf "$TMP/before"
}

CK=$TMP/ck/model.safetensors
mkdir -p "$TMP/ck"
INIT="$UNET init --depth 2 --base 4 --force --out $CK"
fault checkpoint-header-enospc fwrite ENOSPC 0 "$CK" $INIT
fault checkpoint-midway-enospc fwrite ENOSPC 3000 "$CK" $INIT
fault checkpoint-midway-eio fwrite EIO 1000 "$CK" $INIT
fault checkpoint-quota fwrite EDQUOT 500 "$CK" $INIT
fault checkpoint-fsync-eio fsync EIO 0 "$CK" $INIT
fault checkpoint-close-enospc fclose ENOSPC 0 "$CK" $INIT
fault checkpoint-rename-eio rename EIO 0 "$CK" $INIT
W=$TMP/w/weights
mkdir -p "$TMP/w"
fault weightmap-npy-enospc fwrite ENOSPC 64 "$W.npy" "$UNET" weightmap "$MASK" --out "$W.npy"
fault weightmap-npy-fsync-eio fsync EIO 0 "$W.npy" "$UNET" weightmap "$MASK" --out "$W.npy"
fault weightmap-png-enospc fwrite ENOSPC 200 "$W.png" "$UNET" weightmap "$MASK" --out "$W.png"
fault weightmap-png-rename-eio rename EIO 0 "$W.png" "$UNET" weightmap "$MASK" --out "$W.png"
fault sample-data-png-enospc fwrite ENOSPC 1000 "$TMP/sd/images/000.png" \
    "$UNET" sample-data --out "$TMP/sd" --count 1 --size 64
fault augment-enospc fwrite ENOSPC 0 "$TMP/aug" \
    "$UNET" augment "$IMG" "$MASK" --out "$TMP/aug" --count 1
fault augment-weight-fsync-eio fsync EIO 2 "$TMP/aug" \
    "$UNET" augment "$IMG" "$MASK" --out "$TMP/aug" --count 1
fault tiles-png-enospc fwrite ENOSPC 100 "$TMP/tiles.png" \
    "$UNET" tiles "$IMG" --input-size 44 --output-size 4 --out "$TMP/tiles.png"

echo "$cases fault cases, $failures failed"
[ "$failures" -eq 0 ]
