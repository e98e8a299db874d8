#!/bin/sh
# test-cli-augment.sh - `unet weightmap` and `unet augment` from the shell: outputs,
# determinism per seed, exit codes (0 ok, 1 failure, 2 usage) and messages.
set -u
UNET=${UNET_EXE:?UNET_EXE is not set}
TMP=$(mktemp -d "${UNET_BUILD_ROOT:-/tmp}/test-tmp-cli-augment-XXXXXX")
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_rc() { # expected-rc description command...
    want=$1; what=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    [ "$rc" -eq "$want" ] || { fail "$what: exit $rc, expected $want"; cat "$TMP/out" "$TMP/err" >&2; }
}

expect_rc 0 "sample-data" "$UNET" sample-data --out "$TMP/d" --count 2 --size 96 --seed 3
IMG="$TMP/d/images/000.png"
MASK="$TMP/d/masks/000.png"

# weightmap: png and npy, distance maps, the summary
expect_rc 0 "weightmap png" "$UNET" weightmap "$MASK" --out "$TMP/w.png"
grep -q "cells, 2 classes" "$TMP/out" || fail "weightmap summary: $(cat "$TMP/out")"
[ -s "$TMP/w.png" ] || fail "weightmap wrote no png"
expect_rc 0 "weightmap npy" "$UNET" weightmap "$MASK" --out "$TMP/w.npy" --d1 "$TMP/d1.npy" --d2 "$TMP/d2.png" --class-weight "$TMP/wc.npy" --w0 5 --sigma 3 --class-balance inverse
for f in w.npy d1.npy wc.npy; do head -c 6 "$TMP/$f" | grep -q NUMPY || fail "$f is not a .npy file"; done
[ -s "$TMP/d2.png" ] || fail "no d2.png"
expect_rc 0 "weightmap instances" "$UNET" weightmap "$MASK" --mask instances --out "$TMP/wi.npy"
expect_rc 2 "weightmap bad balance" "$UNET" weightmap "$MASK" --out "$TMP/x.png" --class-balance median
grep -q "^unet weightmap: --class-balance: unknown class balance 'median'" "$TMP/err" || fail "balance message: $(cat "$TMP/err")"
expect_rc 2 "weightmap bad sigma" "$UNET" weightmap "$MASK" --out "$TMP/x.png" --sigma -1
expect_rc 2 "weightmap no out" "$UNET" weightmap "$MASK"
expect_rc 1 "weightmap missing mask" "$UNET" weightmap "$TMP/none.png" --out "$TMP/x.png"
grep -q "^unet weightmap: .*none.png" "$TMP/err" || fail "missing mask message: $(cat "$TMP/err")"
expect_rc 1 "weightmap bad extension" "$UNET" weightmap "$MASK" --out "$TMP/x.jpg"
grep -q "x.jpg: write the map as .png" "$TMP/err" || fail "extension message: $(cat "$TMP/err")"

# augment: files per sample, replay by seed, other seeds differ
expect_rc 0 "augment" "$UNET" augment "$IMG" "$MASK" --out "$TMP/a" --count 2 --seed 11 --displacement
for k in 0000 0001; do
    for f in image.png mask.png weight.png weight.npy record.json displacement.npy; do
        [ -s "$TMP/a/$k-$f" ] || fail "augment did not write $k-$f"
    done
done
grep -q '"seed": *12,' "$TMP/a/0001-record.json" || fail "sample 1 is not seed 12: $(head -c 200 "$TMP/a/0001-record.json")"
expect_rc 0 "augment replay" "$UNET" augment "$IMG" "$MASK" --out "$TMP/b" --count 1 --seed 12
for f in image.png mask.png weight.npy record.json; do
    cmp -s "$TMP/a/0001-$f" "$TMP/b/0000-$f" || fail "seed 12 replayed differently: $f"
done
cmp -s "$TMP/a/0000-image.png" "$TMP/a/0001-image.png" && fail "seeds 11 and 12 gave the same image"
expect_rc 0 "augment paper" "$UNET" augment "$IMG" "$MASK" --out "$TMP/p" --count 1 --paper --no-weightmap
[ -e "$TMP/p/0000-weight.npy" ] && fail "--no-weightmap wrote a weight map"
grep -q grid_elastic "$TMP/p/0000-record.json" || fail "paper pipeline has no grid_elastic"
expect_rc 0 "augment print-config" "$UNET" augment --print-config
grep -q '"shift_scale_rotate"' "$TMP/out" || fail "print-config: $(cat "$TMP/out")"
cp "$TMP/out" "$TMP/cfg.json"
expect_rc 0 "augment own config" "$UNET" augment "$IMG" "$MASK" --out "$TMP/c" --count 1 --seed 12 --config "$TMP/cfg.json"
cmp -s "$TMP/c/0000-image.png" "$TMP/b/0000-image.png" || fail "printed default config behaves differently"

printf '{"transforms": [{"type": "elastic", "alpha": "big"}]}' > "$TMP/bad.json"
expect_rc 1 "augment bad config" "$UNET" augment "$IMG" "$MASK" --out "$TMP/x" --config "$TMP/bad.json"
grep -q "^unet augment: .*bad.json: augment config: transforms\[0\].alpha must be a number" "$TMP/err" || fail "bad config message: $(cat "$TMP/err")"
expect_rc 2 "augment config and paper" "$UNET" augment "$IMG" "$MASK" --out "$TMP/x" --config "$TMP/bad.json" --paper
expect_rc 2 "augment bad count" "$UNET" augment "$IMG" "$MASK" --out "$TMP/x" --count 0
expect_rc 2 "augment one file" "$UNET" augment "$IMG" --out "$TMP/x"
expect_rc 0 "sample-data other size" "$UNET" sample-data --out "$TMP/e" --count 1 --size 64 --seed 3
expect_rc 1 "augment size mismatch" "$UNET" augment "$IMG" "$TMP/e/masks/000.png" --out "$TMP/x"
grep -q "is 96 x 96 but .* is 64 x 64" "$TMP/err" || fail "size mismatch message: $(cat "$TMP/err")"

if [ "$fails" -eq 0 ]; then
    rm -rf "$TMP"
    echo "cli-augment: all checks passed"
    exit 0
fi
echo "cli-augment: $fails check(s) failed (files in $TMP)" >&2
exit 1
