#!/usr/bin/env python3
"""False alarms of a production wake-word engine on the audio spikeword is evaluated on.

Runs pymicro-wakeword (microWakeWord, `pip install pymicro-wakeword`) with each of its
bundled models over the held-out negatives that `spikeword eval-stream` counts false alarms
on, exported one WAV per source by

    cargo run --release --example export_negatives -- --part test --out /tmp/negatives
    python3 scripts/compare-microwakeword.py /tmp/negatives

Each source is one long stream (never reset, as in eval-stream). A detection is a frame whose
averaged probability exceeds the model's own cutoff, with 1 s of refractory time after it (the
same refractory time spikeword's detector uses). Prints false alarms per source and model, and
the engine's CPU time per 10 ms of audio (features once, then each model).
"""
import sys
import time
import wave
from pathlib import Path

from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

REFRACTORY_S = 1.0
CHUNK = 160 * 2 * 10  # 100 ms of 16-bit samples per push


def main() -> int:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        print(__doc__, file=sys.stderr)
        return 2
    files = sorted(Path(sys.argv[1]).glob("*.wav"))
    if not files:
        print(f"no .wav files in {sys.argv[1]}", file=sys.stderr)
        return 1
    models = list(Model)
    totals = {m: 0 for m in models}
    hours = 0.0
    cpu_features = cpu_models = 0.0
    frames_total = 0
    print(f"{'source':<40} {'hours':>6} " + " ".join(f"{m.value:>12}" for m in models))
    for path in files:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getsampwidth(), w.getnchannels()) != (16000, 2, 1):
                print(f"skipping {path}: not 16 kHz 16-bit mono", file=sys.stderr)
                continue
            audio = w.readframes(w.getnframes())
        h = len(audio) / 2 / 16000 / 3600
        hours += h
        feats = MicroWakeWordFeatures()
        engines = {m: MicroWakeWord.from_builtin(m) for m in models}
        last = {m: -1e9 for m in models}
        counts = {m: 0 for m in models}
        frame = 0
        for i in range(0, len(audio), CHUNK):
            t0 = time.process_time()
            fs = list(feats.process_streaming(audio[i : i + CHUNK]))
            cpu_features += time.process_time() - t0
            for f in fs:
                frame += 1
                now = frame * 0.01
                t0 = time.process_time()
                for m, e in engines.items():
                    if e.process_streaming(f) and now - last[m] >= REFRACTORY_S:
                        counts[m] += 1
                        last[m] = now
                cpu_models += time.process_time() - t0
        frames_total += frame
        for m in models:
            totals[m] += counts[m]
        print(f"{path.stem:<40} {h:6.2f} " + " ".join(f"{counts[m]:>12}" for m in models), flush=True)
    print(f"{'all':<40} {hours:6.2f} " + " ".join(f"{totals[m]:>12}" for m in models))
    print("false alarms per hour: " + ", ".join(f"{m.value} {totals[m] / hours:.2f}" for m in models))
    per_frame = lambda s: 1e6 * s / max(frames_total, 1)
    print(
        f"CPU per 10 ms of audio: features {per_frame(cpu_features):.1f} us, "
        f"{len(models)} models {per_frame(cpu_models):.1f} us ({per_frame(cpu_models) / len(models):.1f} us each, Python calls included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
