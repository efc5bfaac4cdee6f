#!/usr/bin/env bash
# The soak (issue 10): one hour of real audio through the app's processing worker, headless,
# and 15 minutes of the real window under Xvfb playing the same audio, both at once.
#
#  - The audio is made on the fly from ../shared/data (sentences, spoken commands, noise, a
#    Speech Commands "yes"/"stop" every few items) into one 16 kHz WAV under $SOAK_OUT; it is
#    never committed.
#  - The worker paces a file by the clock, so the headless run takes the audio's length in
#    real time (1 h); the window plays it in real time too (looping, as the app does).
#  - RSS is sampled every 10 s. Checks: after the warm-up every sample within 5 % of their
#    median (the record button's 60 s ring fills its pages in the first minute), no frame
#    dropped or skipped, every detection equal (time, keyword) to an offline
#    `spikeword listen --input` pass over the same file.
#
# Usage: scripts/soak.sh            (SOAK_SECONDS=3600 SOAK_WINDOW_SECONDS=900
#                                    SOAK_WARMUP_SECONDS=300 SOAK_OUT=/tmp/spikeword-soak)
#        SOAK_ANALYSE_ONLY=1 scripts/soak.sh   (the checks again, on the files of a past run)
# Needs: Xvfb and Mesa (scripts/setup.sh), python3 for the summary, ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
audio_s=${SOAK_SECONDS:-3600}
window_s=${SOAK_WINDOW_SECONDS:-900}
warmup_s=${SOAK_WARMUP_SECONDS:-300}
out=${SOAK_OUT:-/tmp/spikeword-soak}
data=${SOAK_DATA:-../shared/data}
mkdir -p "$out"
if [ -z "${SOAK_ANALYSE_ONLY:-}" ]; then
rm -f "$out"/*.jsonl "$out"/*.time "$out"/summary.json

flock /tmp/spikeword-build.lock cargo build --release --bin spikeword --example soak
bin=target/release/spikeword
soak=target/release/examples/soak

echo "soak: making $audio_s s of audio from $data" >&2
"$soak" make-stream --seconds "$audio_s" --data "$data" --out "$out/stream.wav"

echo "soak: offline pass (listen --input)" >&2
/usr/bin/time -v "$bin" listen --input "$out/stream.wav" > "$out/offline.jsonl" 2> "$out/offline.time"

# An X server of our own on a free display.
display=""
for n in $(seq 90 120); do
  if [ ! -e "/tmp/.X$n-lock" ] && [ ! -e "/tmp/.X11-unix/X$n" ]; then display=":$n"; break; fi
done
[ -n "$display" ] || { echo "soak: no free X display" >&2; exit 1; }
Xvfb "$display" -screen 0 1400x900x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
pids=()
cleanup() { kill "${pids[@]}" "$xvfb" 2>/dev/null || true; }
trap cleanup EXIT
sleep 2

echo "soak: worker (headless, real time, $audio_s s) and window ($window_s s) on $display" >&2
nice -n 10 "$soak" worker --input "$out/stream.wav" > "$out/worker.jsonl" 2> "$out/worker.err" &
worker=$!
pids+=("$worker")
DISPLAY="$display" SPIKEWORD_APP_STATS=1 nice -n 10 "$bin" --input "$out/stream.wav" 2> "$out/window.jsonl" > /dev/null &
window=$!
pids+=("$window")

start=$(date +%s)
while kill -0 "$window" 2>/dev/null && [ $(( $(date +%s) - start )) -lt "$window_s" ]; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$window/status" 2>/dev/null || echo 0)
  echo "{\"event\":\"rss\",\"wall_s\":$(( $(date +%s) - start )),\"rss_kb\":$rss}" >> "$out/window-rss.jsonl"
  sleep 10
done
kill -0 "$window" 2>/dev/null || { echo "soak: the window exited early" >&2; exit 1; }
kill "$window"
echo "soak: window done; waiting for the worker" >&2
wait "$worker"
fi

python3 - "$out" "$warmup_s" <<'EOF'
import json, sys
out, warmup = sys.argv[1], float(sys.argv[2])
def lines(name):
    v = []
    for l in open(f"{out}/{name}"):
        try:
            v.append(json.loads(l))
        except ValueError:
            pass
    return v
offline = [(round(d["time"], 6), d["keyword"]) for d in lines("offline.jsonl")]
peak = next(l for l in open(f"{out}/offline.time") if "Maximum resident" in l).split(":")[1].strip()
def flat(samples):
    # Largest distance from the median after the warm-up, in percent of the median.
    after = sorted(s["rss_kb"] for s in samples if s["wall_s"] >= warmup and s["rss_kb"] > 0)
    if not after:
        return (0, 0, 0, float("nan"))
    med = after[len(after) // 2]
    return (after[0], med, after[-1], 100.0 * max(med - after[0], after[-1] - med) / med)
w = lines("worker.jsonl")
wend = next(x for x in w if x["event"] == "end")
wdet = [(round(d["time"], 6), d["keyword"]) for d in w if d["event"] == "detection"]
wlo, wmed, whi, wspread = flat([x for x in w if x["event"] == "rss"])
win = lines("window.jsonl")
stats = [x for x in win if "fps" in x]
last = stats[-1]
played = max(0.0, last["frames"] / 100.0 - 2.0)
windet = [(round(d["time"], 6), d["keyword"]) for d in win if d.get("event") == "detection" and d["time"] <= played]
offwin = [d for d in offline if d[0] <= played]
vlo, vmed, vhi, vspread = flat(lines("window-rss.jsonl"))
fps = sorted(x["fps"] for x in stats)
summary = {
    "audio_seconds": wend["audio_s"],
    "offline": {"detections": len(offline), "peak_rss_kb": int(peak)},
    "worker": {
        "wall_s": wend["wall_s"], "frames": wend["frames"], "expected_frames": wend["expected_frames"],
        "index_gaps": wend["index_gaps"], "frames_dropped": wend["frames_dropped"], "restarts": wend["worker_restarts"],
        "detections": len(wdet), "detections_equal_offline": wdet == offline,
        "rss_kb_after_warmup_min_median_max": [wlo, wmed, whi], "rss_largest_deviation_percent": round(wspread, 2),
    },
    "window": {
        "seconds": len(stats), "audio_played_s": played, "frames": last["frames"], "frames_dropped": last["frames_dropped"],
        "capture_dropped_chunks": last["capture_dropped_chunks"], "restarts": last.get("worker_restarts"),
        "fps_median": fps[len(fps) // 2], "detections": len(windet), "detections_equal_offline": windet == offwin,
        "rss_kb_after_warmup_min_median_max": [vlo, vmed, vhi], "rss_largest_deviation_percent": round(vspread, 2),
    },
}
ok = (summary["worker"]["detections_equal_offline"] and summary["window"]["detections_equal_offline"]
      and wend["frames"] == wend["expected_frames"] and wend["index_gaps"] == 0 and wend["frames_dropped"] == 0
      and last["frames_dropped"] == 0 and wspread <= 5.0 and vspread <= 5.0)
summary["pass"] = ok
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)
print(json.dumps(summary, indent=2))
sys.exit(0 if ok else 1)
EOF
