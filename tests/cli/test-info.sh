#!/bin/sh
# test-info.sh - `unet info`: text and JSON reports, parameter counts of the
# reference models, valid sizes, config files, and refused arguments.
set -u
UNET=${UNET_EXE:?UNET_EXE must name the unet executable}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/unet-cli-info.XXXXXX") || exit 1
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

# the paper's network and the reference counts of tests/torch_models.py
expect 0 "parameters: 31030593" info
expect 0 "input: 572x572 -> output 388x388" info
expect 0 "decoder.upconvs.3          up-conv 2x2 (transposed)" info
expect 0 "parameters: 31030658" info --classes 2
expect 0 "parameters: 1942577" info --in-channels 3 --base 16 --padding same --norm batch
expect 0 "parameters: 3873094" info --model light
expect 0 "parameters: 63686" info --model fcn
expect 0 "parameters: 973574" info --model=fcn --base=64
expect 0 "valid input sides near 565: 540 -> 356, 556 -> 372, 572 -> 388, 588 -> 404" info --size 565
expect 0 "note: 570 is not a valid input side for this model; showing the nearest, 572" info --size 570
expect 0 "one training step" info --batch 2

# JSON: one object with the counts and sizes
expect 0 '"parameters":31030593' info --json
expect 0 '"input_size":572,"output_size":388' info --json
expect 0 '"parameters":3873094' info --json --model light --classes 6
"$UNET" info --json >"$TMP/info.json" 2>&1
lines=$(wc -l <"$TMP/info.json")
[ "$lines" -eq 1 ] || fail "unet info --json printed $lines lines"
if [ -x /usr/bin/python3 ]; then
    /usr/bin/python3 - "$TMP/info.json" <<'PY' || fail "unet info --json is not the expected JSON"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["parameters"] == 31030593, o["parameters"]
assert o["output_size"] == 388 and o["model"]["model"] == "unet"
assert sum(l["params"] for l in o["layers"]) == o["parameters"]
assert o["layers"][-1]["shape"] == [1, 388, 388]
m = o["memory"]
assert m["sgd_step_bytes"] < 0.6 * 1.6e9, m
assert m["activation_train_peak_bytes"] > m["activation_infer_peak_bytes"] > 0
PY
fi

# a model config file, and a run config holding one under "model"
printf '{"model":"light","classes":3,"base":8}\n' >"$TMP/model.json"
expect 0 "model: light (in_channels 1, classes 3" info "$TMP/model.json"
printf '{"model":{"model":"unet","depth":3,"base":8},"epochs":5}\n' >"$TMP/run.json"
expect 0 "depth 3, base 8" info "$TMP/run.json" --size 100

# help
expect 0 "--model unet|light|fcn" info --help
expect 0 "info" --help

# refused arguments: status 2 for usage, 1 for a bad file, with a message
expect 2 "unknown model 'resnet': use unet, light or fcn" info --model resnet
expect 2 "--classes '0' is not a whole number between 1 and 256" info --classes 0
expect 2 "--size 'abc' is not a whole number" info --size abc
expect 2 "option '--classes' needs a value" info --classes
expect 2 "unknown option '--frobnicate'" info --frobnicate
expect 2 "unknown padding 'full': use valid or same" info --padding full
expect 2 "--padding applies to --model unet only" info --model light --padding valid
expect 2 "--depth does not apply to --model fcn" info --model fcn --depth 5
expect 2 "depth '9' is not a whole number between 1 and 8" info --depth 9
expect 2 "--leaky-slope needs --activation leaky" info --leaky-slope 0.2
expect 2 "either a CONFIG file or model options" info "$TMP/model.json" --classes 2
expect 1 "cannot open $TMP/missing.json" info "$TMP/missing.json"
printf 'not json' >"$TMP/bad.json"
expect 1 "is neither a checkpoint (.safetensors) nor a JSON model config" info "$TMP/bad.json"
printf '{"model":"unet","colour":1}' >"$TMP/bad2.json"
expect 1 "unknown key 'colour'" info "$TMP/bad2.json"

# checkpoints: the config and the metadata come from the file
"$UNET" init --base 4 --depth 2 --padding same --norm batch --seed 7 --out "$TMP/small.safetensors" >/dev/null ||
    fail "unet init for the checkpoint checks"
expect 0 "parameters: 1677" info "$TMP/small.safetensors" --size 32
expect 0 "unet-workbench-1" info "$TMP/small.safetensors" --size 32
expect 0 '"checkpoint":{"format":"unet-workbench-1"' info "$TMP/small.safetensors" --json
head -c 100 "$TMP/small.safetensors" >"$TMP/cut.safetensors"
expect 1 "cut.safetensors" info "$TMP/cut.safetensors"

if [ "$failures" -ne 0 ]; then
    echo "cli-info: $failures check(s) failed" >&2
    exit 1
fi
echo "cli-info: all checks passed"
