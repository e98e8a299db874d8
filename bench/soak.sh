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

# After the first 20% (allocator warm-up, first epochs): a least-squares slope,
# and the medians of the first and last third, which single samples (an
# allocation caught in flight) do not move. Flat: the medians differ by less
# than 1% of the mean (+ 256 kB for page granularity).
awk '
    { t[NR] = $1; s[NR] = $2; r[NR] = $4 }
    function median(a, lo, hi,    n, i, j, v, k) {
        n = 0
        for (i = lo; i <= hi; i++) v[++n] = a[i]
        for (i = 2; i <= n; i++) { k = v[i]; for (j = i - 1; j >= 1 && v[j] > k; j--) v[j + 1] = v[j]; v[j + 1] = k }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
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
        third = int(n / 3)
        m1 = median(r, from, from + third - 1)
        m3 = median(r, NR - third + 1, NR)
        printf "anchor (after warm-up, t=%d s): %.1f MB;  end (t=%d s): %.1f MB\n", t[from], r[from] / 1024, t[NR], r[NR] / 1024
        printf "RSS after warm-up: min %.1f MB, max %.1f MB, mean %.1f MB over %d samples; %d steps in all\n", lo / 1024, hi / 1024, mean / 1024, n, s[NR]
        printf "median of the first third %.2f MB, of the last third %.2f MB (%+.0f kB)\n", m1 / 1024, m3 / 1024, m3 - m1
        printf "least-squares slope: %+.2f kB/min (%+.2f MB/hour)\n", slope * 60, slope * 3600 / 1024
        d = m3 - m1
        verdict = (d < 0 ? -d : d) <= 0.01 * mean + 256 ? "flat" : "GROWING"
        printf "verdict: %s\n", verdict
        exit verdict == "flat" ? 0 : 1
    }' "$tmp/samples"
