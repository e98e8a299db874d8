#!/usr/bin/env bash
# bench/soak.sh - long-run memory check: trains a small model for SECONDS
# (default 180) on synthetic data with everything a real run does (augmentation,
# weight maps, prefetch threads, validation, checkpoints every epoch), samples
# the trainer's resident memory (VmRSS of /proc/PID/status) every second, and
# prints the curve, a least-squares slope over the run after warm-up, and the
# verdict: flat when the slope would add less than 1% of the memory per hour.
#
#   bench/soak.sh [SECONDS] [extra 'unet train' options...]
#   UNET_BUILD=build-asan bench/soak.sh 600     # another build folder
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-180}
shift || true
build=${UNET_BUILD:-build}
unet=$build/src/cli/unet
[ -x "$unet" ] || { echo "bench/soak.sh: no $unet; build first (ninja -C $build)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/unet-soak.XXXXXX")
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT

"$unet" sample-data --out "$tmp/data" --count 8 --size 160 --seed 11 >/dev/null
"$unet" train --data "$tmp/data" --depth 3 --base 8 --padding same --tile 96 --epochs 1000000 --patience 0 \
    --lr 0.01 --device cpu --threads 1 --workers 2 --quiet --out "$tmp/run" "$@" >"$tmp/train.log" 2>&1 &
pid=$!

echo "soak: unet train (pid $pid) for $seconds s; RSS sampled every second"
printf '%6s %8s %8s %10s\n' "t (s)" "steps" "epochs" "RSS (MB)"
: >"$tmp/samples"
start=$(date +%s)
while :; do
    t=$(( $(date +%s) - start ))
    [ "$t" -lt "$seconds" ] || break
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    if [ -z "$rss" ]; then
        echo "soak: the trainer ended early:" >&2
        tail -5 "$tmp/train.log" >&2
        exit 1
    fi
    steps=$(grep -c '^step,' "$tmp/run/metrics.csv" 2>/dev/null || true)
    epochs=$(grep -c '^epoch,' "$tmp/run/metrics.csv" 2>/dev/null || true)
    steps=${steps:-0} epochs=${epochs:-0}
    echo "$t $steps $epochs $rss" >>"$tmp/samples"
    # the curve: every 10 s on screen, every second in the fit
    if [ $((t % 10)) -eq 0 ]; then
        printf '%6d %8d %8d %10.1f\n' "$t" "$steps" "$epochs" "$(echo "$rss / 1024" | bc -l)"
    fi
    sleep 1
done
kill -INT $pid
wait $pid || true
pid=

# least squares over the samples after the first 20% (allocator warm-up, first epochs)
awk -v total="$seconds" '
    { t[NR] = $1; s[NR] = $2; r[NR] = $4 }
    END {
        from = int(NR * 0.2) + 1
        n = 0; st = sr = stt = str = 0; lo = 1e18; hi = 0
        for (i = from; i <= NR; i++) {
            n++; st += t[i]; sr += r[i]; stt += t[i] * t[i]; str += t[i] * r[i]
            if (r[i] < lo) lo = r[i]
            if (r[i] > hi) hi = r[i]
        }
        slope = (n * str - st * sr) / (n * stt - st * st)   # kB per second
        mean = sr / n
        per_hour = slope * 3600
        printf "anchor (after warm-up, t=%d s): %.1f MB;  end (t=%d s): %.1f MB\n", t[from], r[from] / 1024, t[NR], r[NR] / 1024
        printf "RSS after warm-up: min %.1f MB, max %.1f MB, mean %.1f MB over %d samples, %d steps\n", lo / 1024, hi / 1024, mean / 1024, n, s[NR]
        printf "slope: %+.2f kB/min (%+.2f MB/hour, %+.2f%% of the mean per hour)\n", slope * 60, per_hour / 1024, 100 * per_hour / mean
        verdict = (per_hour < 0 ? -per_hour : per_hour) < 0.01 * mean ? "flat" : "GROWING"
        printf "verdict: %s\n", verdict
        exit verdict == "flat" ? 0 : 1
    }' "$tmp/samples"
