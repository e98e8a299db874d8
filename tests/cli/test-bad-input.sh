#!/bin/sh
# test-bad-input.sh - every `unet` subcommand that reads files, fed missing,
# empty, truncated, wrong-type, wrong-size and hostile files: each case must
# exit 1 or 2 (no crash, no sanitizer report), print a message that names the
# offending file and says what is wrong, and leave the disk as it was (a
# listing with checksums of the work folder before and after must agree; no
# output file or folder may appear).
#
# One row per case: row NAME PATTERN FILE -- ARGS...
#   PATTERN  extended regex (case-insensitive) the message must match
#   FILE     the name the message must contain ("-": none required)
set -u
UNET=${UNET_EXE:?UNET_EXE must name the unet executable}
UNET=$(cd "$(dirname "$UNET")" && pwd)/$(basename "$UNET")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/unet-bad-input.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
W=$TMP/w
mkdir -p "$W"
cd "$W" || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
failures=0
rows=0

# ---- fixtures ---------------------------------------------------------------
"$UNET" sample-data --out good --count 3 --size 64 --seed 3 >/dev/null || exit 1
"$UNET" sample-data --out small --count 1 --size 48 --seed 4 >/dev/null || exit 1
cp good/images/000.png img.png
cp good/masks/000.png mask.png
cp small/masks/000.png mask48.png
"$UNET" init --depth 2 --base 4 --padding same --out ck.safetensors >/dev/null || exit 1
: >empty.png
: >empty.safetensors
head -c 300 img.png >trunc.png
head -c 2000 ck.safetensors >trunc.safetensors
printf 'hello, world\n' >text.txt
cp text.txt text.png
cp img.png image-as-ckpt.safetensors
cp ck.safetensors ckpt-as-image.png
mkdir folder.png folder.safetensors
ln -s loop-b loop-a
ln -s loop-a loop-b
ln -s loop-a loop.png
printf '{"transforms": [{"type": "no_such_transform"}]}' >aug-bad.json
printf '{"transforms": [' >aug-trunc.json
"$PY" - <<'EOF' || exit 1
import struct, zlib
def chunk(k, d):
    return struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xffffffff)
# a 70-byte PNG whose header says 60000 x 60000
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
open("huge.png", "wb").write(png)
# a TIFF whose header says 40000 x 40000 uncompressed, with 10 bytes of pixels
ifd = [(256, 4, 40000), (257, 4, 40000), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8),
       (277, 3, 1), (278, 4, 40000), (279, 4, 10)]
tif = b"II*\0" + struct.pack("<I", 18) + b"\0" * 10 + struct.pack("<H", len(ifd))
for tag, typ, val in ifd:
    tif += struct.pack("<HHII", tag, typ, 1, val)
open("huge.tif", "wb").write(tif + struct.pack("<I", 0))
# a safetensors header that claims 2^60 bytes
open("huge-header.safetensors", "wb").write(struct.pack("<Q", 1 << 60) + b'{"a":1}')
# a checkpoint whose tensor claims 2^40 elements
hdr = b'{"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}'
open("huge-tensor.safetensors", "wb").write(struct.pack("<Q", len(hdr)) + hdr + b"\0" * 16)
EOF
# datasets with one bad file each
mkds() { # NAME: a copy of good/ to spoil
    rm -rf "$1"
    cp -R good "$1"
}
mkds ds-trunc && cp trunc.png ds-trunc/images/001.png
mkds ds-size && cp mask48.png ds-size/masks/001.png
mkds ds-huge && cp huge.png ds-huge/images/001.png
mkds ds-text && cp text.png ds-text/masks/002.png
mkds ds-orphan && rm ds-orphan/masks/001.png
mkds ds-empty && : >ds-empty/images/002.png
mkdir -p ds-none/images ds-none/masks
# runs to resume: a damaged config, one whose data path leaves the run folder,
# one without checkpoints
"$UNET" train --data good --depth 2 --base 4 --padding same --epochs 1 --lr 0.01 \
    --out run-good --quiet --device reference >/dev/null 2>&1 || { echo "cannot train the fixture run" >&2; exit 1; }
for r in run-badjson run-escape run-nockpt run-truncckpt; do cp -R run-good "$r"; done
printf '{"format": "unet-workbench-run-1", "data": ' >run-badjson/config.json
sed 's|"train": "[^"]*"|"train": "../../etc/x"|' run-good/config.json >run-escape/config.json
rm run-nockpt/last.safetensors run-nockpt/best.safetensors
head -c 1500 run-good/last.safetensors >run-truncckpt/last.safetensors

snapshot() {
    find . -print | LC_ALL=C sort | while IFS= read -r f; do
        if [ -f "$f" ] && [ ! -L "$f" ]; then cksum "$f"; else echo "$f"; fi
    done
}
snapshot >"$TMP/before"

# ---- the table --------------------------------------------------------------
row() {
    name=$1 pattern=$2 file=$3
    shift 3
    [ "$1" = "--" ] && shift
    rows=$((rows + 1))
    "$UNET" "$@" </dev/null >"$TMP/out" 2>&1
    rc=$?
    msg=$(grep -v '^$' "$TMP/out" | head -c 600)
    problem=""
    if [ "$rc" -ne 1 ] && [ "$rc" -ne 2 ]; then
        problem="exit status $rc (expected 1 or 2)"
    elif grep -qE 'AddressSanitizer|LeakSanitizer|runtime error|Segmentation|Aborted|core dumped' "$TMP/out"; then
        problem="a crash or sanitizer report"
    elif [ "$file" != "-" ] && ! grep -qF -- "$file" "$TMP/out"; then
        problem="the message does not name $file"
    elif ! grep -qiE -- "$pattern" "$TMP/out"; then
        problem="the message does not match /$pattern/"
    fi
    snapshot >"$TMP/after"
    if [ -z "$problem" ] && ! cmp -s "$TMP/before" "$TMP/after"; then
        problem="the disk changed: $(diff "$TMP/before" "$TMP/after" | grep '^[<>]' | head -3 | tr '\n' ' ')"
    fi
    if [ -n "$problem" ]; then
        echo "not ok $rows - $name: $problem"
        echo "    unet $*"
        echo "$msg" | sed 's/^/    | /'
        failures=$((failures + 1))
        snapshot >"$TMP/before"
    else
        echo "ok $rows - $name: $(echo "$msg" | head -1 | cut -c1-150)"
    fi
}

MISSING='no such file|does not exist|cannot open'
EMPTY='empty|0 bytes|too short'
TRUNC='truncated|ends early|runs past|damaged'
NOTIMG='not a png, tiff or .npy|not an image|unrecognised'
NOTCKPT='not a checkpoint|neither a checkpoint|not a safetensors|header|is a png'
FOLDER='folder|directory'
LOOP='too many levels of symbolic links'
HUGE='declares|too large|over the .* limit|impossibly large'

# info: checkpoints and configs
row info-missing "$MISSING" nope.safetensors -- info nope.safetensors
row info-empty "$EMPTY" empty.safetensors -- info empty.safetensors
row info-truncated "$TRUNC" trunc.safetensors -- info trunc.safetensors
row info-png "$NOTCKPT" img.png -- info img.png
row info-png-named-ckpt "$NOTCKPT" image-as-ckpt.safetensors -- info image-as-ckpt.safetensors
row info-text "$NOTCKPT" text.txt -- info text.txt
row info-folder "$FOLDER" folder.safetensors -- info folder.safetensors
row info-loop "$LOOP" loop-a -- info loop-a
row info-huge-header "$HUGE" huge-header.safetensors -- info huge-header.safetensors
row info-huge-tensor "$HUGE|data_offsets|runs past|span" huge-tensor.safetensors -- info huge-tensor.safetensors

# init: where it cannot write
row init-out-folder "$FOLDER|exists" folder.safetensors -- init --depth 2 --base 4 --out folder.safetensors --force
row init-out-missing-dir "$MISSING|no such" nodir/ck.safetensors -- init --depth 2 --base 4 --out nodir/ck.safetensors
row init-out-exists "exists" ck.safetensors -- init --depth 2 --base 4 --out ck.safetensors
row init-out-through-file "not a directory" img.png/ck.safetensors -- init --depth 2 --base 4 --out img.png/ck.safetensors

# images: tiles and weightmap read any image
for cmd in tiles weightmap; do
    if [ $cmd = tiles ]; then set -- --input-size 44 --output-size 4 --out out.png; else set -- --out out.png; fi
    row $cmd-missing "$MISSING" nope.png -- $cmd nope.png "$@"
    row $cmd-empty "$EMPTY" empty.png -- $cmd empty.png "$@"
    row $cmd-truncated "$TRUNC" trunc.png -- $cmd trunc.png "$@"
    row $cmd-checkpoint "$NOTIMG" ckpt-as-image.png -- $cmd ckpt-as-image.png "$@"
    row $cmd-text "$NOTIMG" text.png -- $cmd text.png "$@"
    row $cmd-folder "$FOLDER" folder.png -- $cmd folder.png "$@"
    row $cmd-loop "$LOOP" loop.png -- $cmd loop.png "$@"
    row $cmd-huge-png "$HUGE" huge.png -- $cmd huge.png "$@"
    row $cmd-huge-tiff "$HUGE" huge.tif -- $cmd huge.tif "$@"
done
row weightmap-out-folder "$FOLDER" folder.png -- weightmap mask.png --out folder.png
row weightmap-out-missing-dir "$MISSING|no such" nodir/w.npy -- weightmap mask.png --out nodir/w.npy
row weightmap-d1-missing-dir "$MISSING|no such" nodir/d1.npy -- weightmap mask.png --out out.npy --d1 nodir/d1.npy

# augment: two images that must match, and a config
row augment-size-mismatch "must match|size|48 x 48" mask48.png -- augment img.png mask48.png --out aug
row augment-mask-truncated "$TRUNC" trunc.png -- augment img.png trunc.png --out aug
row augment-image-huge "$HUGE" huge.png -- augment huge.png mask.png --out aug
row augment-config-missing "$MISSING" nope.json -- augment img.png mask.png --out aug --config nope.json
row augment-config-empty "json|empty|end of data" empty.png -- augment img.png mask.png --out aug --config empty.png
row augment-config-truncated "json|end of data" aug-trunc.json -- augment img.png mask.png --out aug --config aug-trunc.json
row augment-config-unknown "no_such_transform|unknown" aug-bad.json -- augment img.png mask.png --out aug --config aug-bad.json
row augment-config-png "json|unexpected" img.png -- augment img.png mask.png --out aug --config img.png
row augment-config-folder "$FOLDER" folder.png -- augment img.png mask.png --out aug --config folder.png
row augment-config-loop "$LOOP" loop-a -- augment img.png mask.png --out aug --config loop-a

# dataset check reports every problem (exit 1)
row dataset-missing "$MISSING" nope -- dataset check nope
row dataset-file "is a file|not a dataset folder" img.png -- dataset check img.png
row dataset-truncated "$TRUNC" 001.png -- dataset check ds-trunc
row dataset-size-mismatch "size|48 x 48|differ|match" 001.png -- dataset check ds-size
row dataset-huge "$HUGE" 001.png -- dataset check ds-huge
row dataset-text-mask "$NOTIMG" 002.png -- dataset check ds-text
row dataset-orphan "no mask|missing|partner|without" 001.png -- dataset check ds-orphan
row dataset-empty-image "$EMPTY" 002.png -- dataset check ds-empty
row dataset-no-pairs "no image|empty|no pairs|0 pairs" ds-none -- dataset check ds-none
row dataset-stacks-huge "$HUGE" huge.tif -- dataset check huge.tif mask.png

# train and lr-test: data, configs, runs
T="--depth 2 --base 4 --padding same --epochs 1 --lr 0.01 --quiet --device reference"
row train-data-missing "$MISSING" nope -- train --data nope $T --out run-new
row train-data-file "is a file|not a dataset folder|folder" img.png -- train --data img.png $T --out run-new
row train-data-truncated "$TRUNC" 001.png -- train --data ds-trunc $T --out run-new
row train-data-size-mismatch "size|48 x 48|match" 001.png -- train --data ds-size $T --out run-new
row train-data-huge "$HUGE" 001.png -- train --data ds-huge $T --out run-new
row train-data-no-pairs "no image|empty|no pairs" ds-none -- train --data ds-none $T --out run-new
row train-val-missing "$MISSING" nope -- train --data good --val nope $T --out run-new
row train-augment-missing "$MISSING" nope.json -- train --data good --augment nope.json $T --out run-new
row train-augment-text "json|unexpected" text.txt -- train --data good --augment text.txt $T --out run-new
row train-config-png "json|unexpected|not" img.png -- train --config img.png --out run-new
row train-config-folder "$FOLDER" folder.png -- train --config folder.png --out run-new
row train-out-is-file "exists|not a directory|folder|is a file" img.png -- train --data good $T --out img.png
row train-out-existing-run "exists|already|resume" run-good -- train --data good $T --out run-good
row train-resume-missing "$MISSING" nope -- train --resume nope
row train-resume-bad-config "json|config" config.json -- train --resume run-badjson
row train-resume-escaping-path "$MISSING|etc/x" etc/x -- train --resume run-escape
row train-resume-no-checkpoint "checkpoint|last.safetensors|$MISSING" run-nockpt -- train --resume run-nockpt
row train-resume-truncated "$TRUNC" last.safetensors -- train --resume run-truncckpt
row lr-test-data-missing "$MISSING" nope -- lr-test --data nope --depth 2 --base 4 --padding same --iters 5 --device reference
row lr-test-data-truncated "$TRUNC" 001.png -- lr-test --data ds-trunc --depth 2 --base 4 --padding same --iters 5 --device reference

# predict and evaluate: checkpoints and images
P="--out pred --device reference --quiet"
row predict-model-missing "$MISSING" nope.safetensors -- predict --model nope.safetensors $P img.png
row predict-model-empty "$EMPTY" empty.safetensors -- predict --model empty.safetensors $P img.png
row predict-model-truncated "$TRUNC" trunc.safetensors -- predict --model trunc.safetensors $P img.png
row predict-model-png "$NOTCKPT" image-as-ckpt.safetensors -- predict --model image-as-ckpt.safetensors $P img.png
row predict-model-text "$NOTCKPT|model_config" text.txt -- predict --model text.txt $P img.png
row predict-model-folder "$FOLDER|regular file" folder.safetensors -- predict --model folder.safetensors $P img.png
row predict-model-huge-header "$HUGE" huge-header.safetensors -- predict --model huge-header.safetensors $P img.png
row predict-image-missing "$MISSING" nope.png -- predict --model ck.safetensors $P nope.png
row predict-image-empty "$EMPTY" empty.png -- predict --model ck.safetensors $P empty.png
row predict-image-truncated "$TRUNC" trunc.png -- predict --model ck.safetensors $P trunc.png
row predict-image-checkpoint "$NOTIMG" ckpt-as-image.png -- predict --model ck.safetensors $P ckpt-as-image.png
row predict-image-folder "$FOLDER" folder.png -- predict --model ck.safetensors $P folder.png
row predict-image-loop "$LOOP" loop.png -- predict --model ck.safetensors $P loop.png
row predict-image-huge "$HUGE" huge.png -- predict --model ck.safetensors $P huge.png
row predict-out-is-file "not a directory|exists|folder" img.png -- predict --model ck.safetensors --out img.png --device reference img.png
row evaluate-model-png "$NOTCKPT" image-as-ckpt.safetensors -- evaluate --model image-as-ckpt.safetensors --data good --device reference
row evaluate-data-missing "$MISSING" nope -- evaluate --model ck.safetensors --data nope --device reference
row evaluate-data-truncated "$TRUNC" 001.png -- evaluate --model ck.safetensors --data ds-trunc --device reference
row evaluate-csv-missing-dir "$MISSING|no such" nodir/e.csv -- evaluate --model ck.safetensors --data good --device reference --csv nodir/e.csv

# sample-data: an output that is a file
row sample-data-out-file "not a directory|exists|folder" img.png -- sample-data --out img.png --count 1 --size 32

echo "$rows cases, $failures failed"
[ "$failures" -eq 0 ]
