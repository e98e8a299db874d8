#!/bin/sh
# test-train-crash.sh - a training killed with SIGKILL at random moments always
# leaves a loadable last.safetensors (and at most one temporary file), and
# `unet train --resume` continues from the last good state: the finished run
# has every epoch once in metrics.csv and ends with exactly the losses of a
# run that was never interrupted (the trainer is deterministic per seed).
set -u
UNET=${UNET_EXE:?UNET_EXE must name the unet executable}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/unet-train-crash.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

EPOCHS=30
"$UNET" sample-data --out "$TMP/data" --count 3 --size 96 --seed 5 >/dev/null || exit 1
OPTS="--data $TMP/data --depth 2 --base 8 --padding same --epochs $EPOCHS --steps-per-epoch 4 --patience 0
      --lr 0.01 --device cpu --threads 1 --workers 1 --quiet --seed 3"

# the uninterrupted reference; the kills land at random fractions of its time
t0=$(date +%s%N)
"$UNET" train $OPTS --out "$TMP/ref" >"$TMP/ref.log" 2>&1 || { cat "$TMP/ref.log"; exit 1; }
ref_ms=$(( ($(date +%s%N) - t0) / 1000000 ))

epoch_of() { # checkpoint -> its epoch, or -1 when it does not load
    "$UNET" info "$1" --json 2>/dev/null | "$PY" -c \
        'import json, sys; print(json.load(sys.stdin)["checkpoint"]["epoch"])' 2>/dev/null || echo -1
}

RUN=$TMP/run
last=0
kills=0
round=0
seed=$(date +%s)
while [ $round -lt 6 ]; do
    round=$((round + 1))
    if [ -f "$RUN/last.safetensors" ]; then
        "$UNET" train --resume "$RUN" --quiet >>"$TMP/run.log" 2>&1 &
    else
        rm -rf "$RUN"
        "$UNET" train $OPTS --out "$RUN" >>"$TMP/run.log" 2>&1 &
    fi
    pid=$!
    delay=$(awk -v s="$seed" -v r="$round" -v t="$ref_ms" 'BEGIN { srand(s + r); printf "%.2f", t * (0.05 + rand() * 0.3) / 1000 }')
    sleep "$delay"
    if kill -9 $pid 2>/dev/null; then
        kills=$((kills + 1))
    fi
    wait $pid 2>/dev/null
    temps=$(find "$RUN" -name '*.tmp-*' 2>/dev/null | wc -l)
    [ "$temps" -le 1 ] || fail "round $round: $temps temporary files in the run folder"
    if [ -f "$RUN/last.safetensors" ]; then
        e=$(epoch_of "$RUN/last.safetensors")
        [ "$e" -ge 0 ] || fail "round $round: last.safetensors does not load after kill -9"
        [ "$e" -ge "$last" ] || fail "round $round: last.safetensors went back from epoch $last to $e"
        last=$e
        echo "round $round: killed after $delay s; last.safetensors holds epoch $e"
    else
        echo "round $round: killed after $delay s, before the first checkpoint"
    fi
done

# finish the run
if [ -f "$RUN/last.safetensors" ]; then
    "$UNET" train --resume "$RUN" --quiet >>"$TMP/run.log" 2>&1 || fail "the final resume failed: $(tail -3 "$TMP/run.log")"
else
    rm -rf "$RUN"
    "$UNET" train $OPTS --out "$RUN" >>"$TMP/run.log" 2>&1 || fail "the final run failed"
fi
[ "$(epoch_of "$RUN/last.safetensors")" = "$EPOCHS" ] || fail "the finished run's last.safetensors is not epoch $EPOCHS"
[ -z "$(find "$RUN" -name '*.tmp-*')" ] || fail "temporary files left after the run finished"

# every epoch once, and the same losses as the uninterrupted run
epochs=$(grep '^epoch,' "$RUN/metrics.csv" | cut -d, -f2 | tr '\n' ' ')
want=$(seq 1 $EPOCHS | tr '\n' ' ')
[ "$epochs" = "$want" ] || fail "metrics.csv epochs are '$epochs', expected '$want'"
# columns 2-12: epoch, step, lr, losses and scores (not the timings)
grep '^epoch,' "$RUN/metrics.csv" | cut -d, -f2-12 >"$TMP/got"
grep '^epoch,' "$TMP/ref/metrics.csv" | cut -d, -f2-12 >"$TMP/want"
if ! cmp -s "$TMP/got" "$TMP/want"; then
    fail "the resumed run's epochs differ from the uninterrupted run's:"
    diff "$TMP/want" "$TMP/got" | head -6 >&2
fi
# and every step once, with the same loss
grep '^step,' "$RUN/metrics.csv" | cut -d, -f2-5 >"$TMP/got-steps"
grep '^step,' "$TMP/ref/metrics.csv" | cut -d, -f2-5 >"$TMP/want-steps"
if ! cmp -s "$TMP/got-steps" "$TMP/want-steps"; then
    fail "the resumed run's step rows differ from the uninterrupted run's:"
    diff "$TMP/want-steps" "$TMP/got-steps" | head -6 >&2
fi
grep -q "resum" "$RUN/log.txt" || fail "log.txt does not mention the resume"
[ "$kills" -ge 2 ] || fail "only $kills kills landed during training: the test proved little"

echo "$kills kills over $round rounds (seed $seed, reference run $ref_ms ms); the finished run matches the uninterrupted one over $EPOCHS epochs"
[ "$failures" -eq 0 ]
