#!/bin/sh
# test-init.sh - `unet init`: writes a checkpoint and says what it wrote,
# refuses to replace a file without --force, and reports bad arguments and
# unwritable places.
set -u
UNET=${UNET_EXE:?UNET_EXE must name the unet executable}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/unet-cli-init.XXXXXX") || exit 1
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
    grep -qF -- "$pattern" "$TMP/out" "$TMP/err" || fail "unet $*: no '$pattern' in its output"
}

expect 0 "wrote $TMP/a.safetensors" init --depth 3 --base 8 --out "$TMP/a.safetensors"
expect 0 "parameters:      29,321 in 26 tensors" init --depth 3 --base 8 --out "$TMP/b.safetensors"
expect 0 "model:           unet, 1 input channel, 1 class, depth 3, base 8" \
    init --depth 3 --base 8 --out "$TMP/c.safetensors"
[ -s "$TMP/a.safetensors" ] || fail "no checkpoint written"
cmp -s "$TMP/a.safetensors" "$TMP/b.safetensors" || fail "the same options and seed gave different files"
expect 0 "buffers:" init --norm batch --depth 2 --base 4 --out "$TMP/bn.safetensors"
expect 0 "model:           light" init --model light --base 8 --out=$TMP/light.safetensors
expect 0 "model:           fcn" init --model fcn --base 8 -o "$TMP/fcn.safetensors"
expect 0 "seed 7" init --depth 3 --base 8 --seed 7 --out "$TMP/s7.safetensors"
cmp -s "$TMP/a.safetensors" "$TMP/s7.safetensors" && fail "another seed gave the same weights"

# an existing file is kept unless --force
expect 1 "exists already; pass --force" init --depth 2 --base 4 --out "$TMP/a.safetensors"
cmp -s "$TMP/a.safetensors" "$TMP/b.safetensors" || fail "a refused init changed the file"
expect 0 "wrote" init --depth 2 --base 4 --out "$TMP/a.safetensors" --force
cmp -s "$TMP/a.safetensors" "$TMP/b.safetensors" && fail "--force did not replace the file"

# usage errors (2) and failures (1)
expect 2 "say where to write the checkpoint with --out" init --depth 3
expect 2 "--out needs a file name" init --out
expect 2 "unexpected argument 'extra'" init --out "$TMP/x.safetensors" extra
expect 2 "unknown model 'resnet'" init --model resnet --out "$TMP/x.safetensors"
expect 1 "cannot write '$TMP/no/dir/x.safetensors'" init --out "$TMP/no/dir/x.safetensors"
[ -e "$TMP/x.safetensors" ] && fail "a refused init wrote a file"
ls "$TMP" | grep -q tmp- && fail "a temporary file was left behind"
expect 0 "--out FILE.safetensors" init --help

if [ "$failures" -ne 0 ]; then
    echo "cli-init: $failures check(s) failed" >&2
    exit 1
fi
echo "cli-init: all checks passed"
