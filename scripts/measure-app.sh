#!/usr/bin/env bash
# Measures the desktop app: CPU use (percent of one core, from /proc/PID/stat over a window)
# and UI frame rate, (1) playing a file with --input, (2) listening to a virtual microphone
# (a private PulseAudio null sink fed by paplay), and (3) headless `listen --mic`.
# Runs under its own Xvfb (software OpenGL, so the app's number includes rendering on the CPU).
#   scripts/measure-app.sh [MODEL] [SECONDS]
# MODEL defaults to the shipped model; SECONDS (default 20) is the measuring window.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CARGO_TARGET_DIR:-target}/release/spikeword
model=${1:-models/spikeword-kws12.safetensors}
secs=${2:-20}
clip=assets/yes_0cb74144.flac
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ -f "$model" ] || { echo "no model at $model (pass one as the first argument)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
tck=$(getconf CLK_TCK)

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# cpu PID: percent of one core used by PID over the next $secs seconds.
cpu() { local a b; a=$(ticks "$1"); sleep "$secs"; b=$(ticks "$1"); awk -v d=$((b - a)) -v t="$tck" -v s="$secs" 'BEGIN {printf "%.1f", 100 * d / t / s}'; }
# fps LOG: mean of the app's per-second "fps" over its last $secs lines.
fps() { tail -n "$secs" "$1" | grep -o '"fps":[0-9.]*' | cut -d: -f2 | awk '{s+=$1; n++} END {if (n) printf "%.1f", s/n; else print "n/a"}'; }

exec 3< <(Xvfb -displayfd 1 -screen 0 1400x900x24 -nolisten tcp 2>/dev/null)
read -r -u 3 dnum
pids+=($(pgrep -n -x Xvfb))
export DISPLAY=:$dnum
unset WAYLAND_DISPLAY

mkdir -p "$tmp/rt" "$tmp/home"
export PULSE_SERVER=unix:$tmp/rt/native XDG_RUNTIME_DIR=$tmp/rt HOME=$tmp/home
pulseaudio -n --daemonize=no --exit-idle-time=-1 --system=false --disallow-exit \
  --load="module-native-protocol-unix auth-anonymous=1 socket=$tmp/rt/native" \
  --load="module-null-sink sink_name=spikeword_measure" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
pactl set-default-source spikeword_measure.monitor
export PULSE_COOKIE=$tmp/home/.config/pulse/cookie

echo "== app, --input $clip (looping), window $secs s after 5 s warm-up"
SPIKEWORD_APP_STATS=1 "$bin" --model "$model" --input "$clip" 2>"$tmp/a.log" & app=$!; pids+=($app)
sleep 5; c=$(cpu $app); echo "app CPU ${c}% of one core, UI $(fps "$tmp/a.log") fps"
kill $app

echo "== app, virtual microphone (paplay looping $clip into the null sink)"
( while true; do paplay "$clip"; sleep 0.5; done ) & pids+=($!)
SPIKEWORD_APP_STATS=1 "$bin" --model "$model" 2>"$tmp/b.log" & app=$!; pids+=($app)
sleep 5; c=$(cpu $app); echo "app CPU ${c}% of one core, UI $(fps "$tmp/b.log") fps"
kill $app

echo "== headless: listen --mic"
"$bin" listen --mic --model "$model" >/dev/null & app=$!; pids+=($app)
sleep 5; c=$(cpu $app); echo "listen --mic CPU ${c}% of one core"
