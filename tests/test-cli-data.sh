#!/bin/sh
# test-cli-data.sh - `unet sample-data`, `unet dataset check` and `unet tiles`
# from the shell: outputs, exit codes (0 ok, 1 failure, 2 usage) and messages.
set -u
UNET=${UNET_EXE:?UNET_EXE is not set}
TMP=$(mktemp -d "${UNET_BUILD_ROOT:-/tmp}/test-tmp-cli-data-XXXXXX")
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_rc() { # expected-rc description command...
    want=$1; what=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    [ "$rc" -eq "$want" ] || { fail "$what: exit $rc, expected $want"; cat "$TMP/out" "$TMP/err" >&2; }
}

# sample-data writes the layout; the same seed gives the same bytes.
expect_rc 0 "sample-data" "$UNET" sample-data --out "$TMP/a" --count 4 --size 64 --seed 5
grep -q "wrote 4 image/mask pairs" "$TMP/out" || fail "sample-data summary: $(cat "$TMP/out")"
[ -f "$TMP/a/images/000.png" ] && [ -f "$TMP/a/masks/003.png" ] || fail "sample-data files missing"
[ -s "$TMP/err" ] && fail "sample-data printed to stderr off a terminal: $(cat "$TMP/err")"
expect_rc 0 "sample-data again" "$UNET" sample-data --out "$TMP/b" --count 4 --size 64 --seed 5
cmp -s "$TMP/a/images/002.png" "$TMP/b/images/002.png" || fail "same seed, different image"
cmp -s "$TMP/a/masks/002.png" "$TMP/b/masks/002.png" || fail "same seed, different mask"
expect_rc 0 "sample-data other seed" "$UNET" sample-data --out "$TMP/c" --count 1 --size 64 --seed 6
cmp -s "$TMP/a/images/000.png" "$TMP/c/images/000.png" && fail "different seeds, same image"
ls "$TMP/a/images" | grep -q tmp && fail "temporary files left behind"

# Bad usage is exit 2 with a message naming the command.
expect_rc 2 "sample-data without --out" "$UNET" sample-data --count 3
grep -q "unet sample-data: --out DIR is required" "$TMP/err" || fail "missing --out message: $(cat "$TMP/err")"
expect_rc 2 "sample-data bad size" "$UNET" sample-data --out "$TMP/x" --size 7
grep -q "unet sample-data: --size '7'" "$TMP/err" || fail "bad size message: $(cat "$TMP/err")"
expect_rc 2 "sample-data unknown option" "$UNET" sample-data --out "$TMP/x" --colour
grep -q "unknown option '--colour'" "$TMP/err" || fail "unknown option message: $(cat "$TMP/err")"
expect_rc 1 "sample-data unwritable" "$UNET" sample-data --out "$TMP/a/images/000.png/x" --count 1
grep -q "^unet sample-data: .*000.png" "$TMP/err" || fail "unwritable message: $(cat "$TMP/err")"
expect_rc 0 "sample-data --help" "$UNET" sample-data --help

# dataset check: clean, then broken in three ways.
expect_rc 0 "check clean" "$UNET" dataset check "$TMP/a"
grep -q "no problems found" "$TMP/out" || fail "clean check output: $(cat "$TMP/out")"
expect_rc 0 "check clean json" "$UNET" dataset check --json "$TMP/a"
grep -q '"ok":true' "$TMP/out" && grep -q '"pairs":4' "$TMP/out" || fail "json output: $(cat "$TMP/out")"
rm "$TMP/a/masks/001.png"
printf 'not an image' > "$TMP/a/images/002.png"
"$UNET" sample-data --out "$TMP/small" --count 1 --size 32 >/dev/null
cp "$TMP/small/masks/000.png" "$TMP/a/masks/003.png"
expect_rc 1 "check broken" "$UNET" dataset check "$TMP/a"
grep -q "3 problems" "$TMP/out" || fail "problem count: $(cat "$TMP/out")"
grep -q "images/001.png has no mask" "$TMP/out" || fail "missing mask not reported"
grep -q "images/002.png is not a PNG" "$TMP/out" || fail "damaged image not reported"
grep -q "masks/003.png is 32 x 32 but its image .*images/003.png is 64 x 64" "$TMP/out" || fail "size mismatch not reported"
expect_rc 1 "check broken json" "$UNET" dataset check "$TMP/a" --json
grep -q '"ok":false' "$TMP/out" && grep -q '"file":".*masks/003.png"' "$TMP/out" || fail "json problems: $(cat "$TMP/out")"
mkdir "$TMP/empty"
expect_rc 1 "check empty" "$UNET" dataset check "$TMP/empty"
grep -q "has no images/ folder" "$TMP/out" || fail "empty folder: $(cat "$TMP/out")"
expect_rc 2 "check no dir" "$UNET" dataset check
expect_rc 2 "check bad mode" "$UNET" dataset check "$TMP/a" --mask-mode semantic
grep -q "unknown mask mode 'semantic'" "$TMP/err" || fail "bad mode message: $(cat "$TMP/err")"
expect_rc 2 "dataset bad sub" "$UNET" dataset frobnicate

# tiles: the paper's geometry on a 64 px image, and errors.
expect_rc 0 "tiles" "$UNET" tiles "$TMP/b/images/000.png" --input-size 188 --output-size 100 --out "$TMP/tiles.png"
grep -q "1 x 1 = 1 tiles" "$TMP/out" || fail "tiles summary: $(cat "$TMP/out")"
head -c 8 "$TMP/tiles.png" | od -c | grep -q "P   N   G" || fail "tiles did not write a PNG"
expect_rc 0 "tiles highlight" "$UNET" tiles "$TMP/b/images/000.png" --input-size 44 --output-size 20 --out "$TMP/t2.png" --highlight 8
grep -q "4 x 4 = 16 tiles" "$TMP/out" || fail "tiles grid: $(cat "$TMP/out")"
expect_rc 2 "tiles odd border" "$UNET" tiles "$TMP/b/images/000.png" --input-size 45 --output-size 20 --out "$TMP/t3.png"
grep -q "even" "$TMP/err" || fail "odd border message: $(cat "$TMP/err")"
expect_rc 2 "tiles no sizes" "$UNET" tiles "$TMP/b/images/000.png" --out "$TMP/t3.png"
expect_rc 2 "tiles highlight range" "$UNET" tiles "$TMP/b/images/000.png" --input-size 44 --output-size 20 --out "$TMP/t3.png" --highlight 16
# tiles from a model's geometry: a config file and a checkpoint give the same grid
printf '{"model":"unet","depth":3,"base":4}' >"$TMP/model.json"
expect_rc 0 "tiles model config" "$UNET" tiles "$TMP/b/images/000.png" --model "$TMP/model.json" --size 100 --out "$TMP/t4.png"
grep -q "tiles 100 -> 60 (border 20)" "$TMP/out" || fail "tiles --model geometry: $(cat "$TMP/out")"
"$UNET" init --depth 3 --base 4 --out "$TMP/model.safetensors" >/dev/null 2>&1 || fail "init for tiles --model"
expect_rc 0 "tiles model checkpoint" "$UNET" tiles "$TMP/b/images/000.png" --model "$TMP/model.safetensors" --size 99 --out "$TMP/t5.png"
grep -q "tiles 100 -> 60 (border 20)" "$TMP/out" || fail "tiles --model checkpoint geometry: $(cat "$TMP/out")"
expect_rc 2 "tiles model and sizes" "$UNET" tiles "$TMP/b/images/000.png" --model "$TMP/model.json" --input-size 44 --output-size 20 --out "$TMP/t3.png"
expect_rc 1 "tiles missing model" "$UNET" tiles "$TMP/b/images/000.png" --model "$TMP/none.json" --out "$TMP/t3.png"
grep -q "none.json" "$TMP/err" || fail "missing model message: $(cat "$TMP/err")"
expect_rc 1 "tiles damaged image" "$UNET" tiles "$TMP/a/images/002.png" --input-size 44 --output-size 20 --out "$TMP/t3.png"
grep -q "^unet tiles: .*images/002.png" "$TMP/err" || fail "damaged image message: $(cat "$TMP/err")"
[ -e "$TMP/t3.png" ] && fail "a failed tiles run left an output file"

if [ "$fails" -eq 0 ]; then
    rm -rf "$TMP"
    echo "cli-data: all checks passed"
    exit 0
fi
echo "cli-data: $fails check(s) failed (files in $TMP)" >&2
exit 1
