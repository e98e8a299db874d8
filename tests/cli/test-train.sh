#!/bin/sh
# test-train.sh - `unet train` and `unet lr-test` from the command line: a short
# run and its folder, resume, replay from config.json, Ctrl-C, divergence, the
# LR test's CSV, and usage errors.
set -u
UNET=${UNET_EXE:?UNET_EXE must name the unet executable}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/unet-cli-train.XXXXXX") || exit 1
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
    grep -qF -- "$pattern" "$TMP/out" "$TMP/err" || fail "unet $*: no '$pattern' in its output: $(cat "$TMP/out" "$TMP/err")"
}

"$UNET" sample-data --out "$TMP/data" --count 6 --size 64 --seed 3 >/dev/null || fail "sample-data"
SMALL="--depth 2 --base 4 --padding same --threads 1 --workers 1 --steps-per-epoch 3"

expect 0 "epoch 2/2: train loss" train --data "$TMP/data" $SMALL --epochs 2 --lr 0.01 --out "$TMP/run"
grep -qF "run folder: $TMP/run" "$TMP/out" || fail "no run folder line"
grep -qF "images/s" "$TMP/out" || fail "no throughput line"
for f in config.json metrics.csv log.txt best.safetensors last.safetensors; do
    [ -s "$TMP/run/$f" ] || fail "run folder lacks $f"
done
[ -d "$TMP/run/val-best" ] || fail "run folder lacks val-best/"
[ "$(grep -c '^step,' "$TMP/run/metrics.csv")" -eq 6 ] || fail "metrics.csv: not 6 step rows"
[ "$(grep -c '^epoch,' "$TMP/run/metrics.csv")" -eq 2 ] || fail "metrics.csv: not 2 epoch rows"

expect 1 "already holds a training run" train --data "$TMP/data" $SMALL --epochs 2 --out "$TMP/run"
expect 0 "epoch 3/3: train loss" train --resume "$TMP/run" --epochs 3
[ "$(grep -c '^epoch,' "$TMP/run/metrics.csv")" -eq 3 ] || fail "resume: not 3 epoch rows"
expect 0 "finished 3 epochs" train --resume "$TMP/run" --epochs 3
expect 0 "epoch 1/1: train loss" train --config "$TMP/run/config.json" --epochs 1 --out "$TMP/replay"
[ -s "$TMP/replay/last.safetensors" ] || fail "replay wrote no checkpoint"

# Ctrl-C: stops after the current step and leaves a checkpoint to resume from
"$UNET" train --data "$TMP/data" $SMALL --epochs 100000 --lr 0.01 --out "$TMP/int" \
    >"$TMP/int.out" 2>"$TMP/int.err" &
pid=$!
n=0
while [ "$n" -lt 600 ] && ! grep -q '^step,' "$TMP/int/metrics.csv" 2>/dev/null; do
    sleep 0.05
    n=$((n + 1))
done
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] || fail "Ctrl-C: exit status $rc: $(cat "$TMP/int.err")"
grep -qF "stopped at epoch" "$TMP/int.out" || fail "Ctrl-C: no 'stopped at epoch' line: $(cat "$TMP/int.out")"
grep -qF "resume with --resume" "$TMP/int.out" || fail "Ctrl-C: no resume hint"
[ -s "$TMP/int/last.safetensors" ] || fail "Ctrl-C: no last.safetensors"

# divergence: message, status 1, the last good checkpoint kept
UNET_TEST_POISON_STEP=4 "$UNET" train --data "$TMP/data" $SMALL --epochs 3 --lr 0.01 \
    --out "$TMP/nan" >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] || fail "poisoned run did not fail"
grep -qF "training diverged at epoch 2" "$TMP/err" || fail "no divergence message: $(cat "$TMP/err")"
[ -s "$TMP/nan/last.safetensors" ] || fail "divergence lost last.safetensors"

expect 0 "suggested lr:" lr-test --data "$TMP/data" --depth 2 --base 4 --padding same --threads 1 \
    --iters 20 --max-lr 100 --csv "$TMP/lr.csv"
head -n 1 "$TMP/lr.csv" | grep -qF "iteration,lr,loss,smoothed_loss,suggested" || fail "lr.csv header"
[ "$(grep -c ',1$' "$TMP/lr.csv")" -eq 1 ] || fail "lr.csv: not one suggested row"

# precision: fp32 trains on the CPU and is kept in config.json; bf16 needs CUDA, also when it
# comes from a run's config.json on resume; predict and evaluate take the same option
BF16="bf16 needs the CUDA backend; use --precision fp32 or --device cuda"
expect 0 "epoch 1/1: train loss" train --data "$TMP/data" $SMALL --epochs 1 --lr 0.01 \
    --precision fp32 --device cpu --out "$TMP/fp32"
grep -qF '"precision": "fp32"' "$TMP/fp32/config.json" || fail "config.json lacks precision fp32"
grep -qF '"precision": "tf32"' "$TMP/run/config.json" || fail "config.json lacks the default tf32"
expect 1 "unet train: $BF16" train --data "$TMP/data" $SMALL --epochs 1 --precision bf16 \
    --device cpu --out "$TMP/bf16"
expect 1 "unet train: $BF16" train --resume "$TMP/fp32" --epochs 2 --precision bf16 --device cpu
grep -qF '"precision": "fp32"' "$TMP/fp32/config.json" || fail "a refused resume changed config.json"
sed 's/"precision": "fp32"/"precision": "bf16"/' "$TMP/fp32/config.json" >"$TMP/cfg.json" &&
    cp "$TMP/cfg.json" "$TMP/fp32/config.json"
expect 1 "unet train: $BF16" train --resume "$TMP/fp32" --epochs 2 --device cpu
expect 0 "epoch 2/2: train loss" train --resume "$TMP/fp32" --epochs 2 --precision fp32 --device cpu
expect 1 "unet lr-test: $BF16" lr-test --data "$TMP/data" --depth 2 --base 4 --padding same \
    --iters 5 --precision bf16 --device reference
expect 2 "unknown precision 'fp16': use fp32, tf32 or bf16" train --data "$TMP/data" --precision fp16
expect 1 "unet predict: $BF16" predict --model "$TMP/run/best.safetensors" --out "$TMP/pred" \
    --precision bf16 --device cpu "$TMP/data/images/000.png"
expect 0 "000" predict --model "$TMP/run/best.safetensors" --out "$TMP/pred" --precision fp32 \
    --device cpu --threads 1 "$TMP/data/images/000.png"
[ -s "$TMP/pred/000.png" ] || fail "predict --precision fp32 wrote no mask"
expect 1 "unet evaluate: $BF16" evaluate --model "$TMP/run/best.safetensors" --data "$TMP/data" \
    --precision bf16 --device reference
expect 2 "'half' is not a valid value for --precision" evaluate --model x --data y --precision half

# usage and user errors
expect 2 "--data DIR" train --epochs 2
expect 2 "--epochs 'x' is not a whole number" train --data "$TMP/data" --epochs x
expect 2 "unknown option '--bogus'" train --data "$TMP/data" --bogus 1
expect 2 "--lr '-1' is not a number" train --data "$TMP/data" --lr -1
expect 1 "$TMP/missing" train --data "$TMP/missing" --out "$TMP/r2"
expect 1 "has no config.json" train --resume "$TMP/data"
expect 1 "does not exist" train --resume "$TMP/nothing-here"
expect 2 "belong to 'unet train'" lr-test --data "$TMP/data" --out "$TMP/x"
expect 1 "model takes 3" train --data "$TMP/data" $SMALL --in-channels 3 --out "$TMP/r3"
expect 0 "usage: unet train" train --help
expect 0 "usage: unet lr-test" lr-test --help

if [ "$failures" -gt 0 ]; then
    echo "cli-train: $failures failure(s)"
    exit 1
fi
echo "cli-train: all checks passed"
