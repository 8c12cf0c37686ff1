"""Transcribe speech with the tiny trained recogniser, with or without a hotword list.

The checkpoint comes from ``benchmarks/train_recognizer.py`` (cached in ``~/.cache/ming/contextasr/recogniser-tiny``).
It knows only the English template sentences of ming-testdata spoken by espeak-ng, so it is a test instrument (e.g.
the word error rate of synthesised speech), not a general recogniser.

    python packages/ming-contextasr/examples/transcribe.py speech.wav [--hotwords "Vafa Brona" Stoville] [--bias 2]
    python packages/ming-contextasr/examples/transcribe.py   # demo: a held-out espeak-ng sentence

In Python::

    from ming_contextasr import ContextASRRecognizer, ContextASRRequest

    asr = ContextASRRecognizer.from_pretrained(Path.home() / ".cache/ming/contextasr/recogniser-tiny")
    request = ContextASRRequest(audio=waveform, sample_rate=rate, allow_resample=True, language="English")
    text = asr.transcribe([request])[0].text
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.io import wavfile

from ming_contextasr import ContextASRRecognizer, ContextASRRequest, score_utterance

CHECKPOINT = Path.home() / ".cache" / "ming" / "contextasr" / "recogniser-tiny"


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float audio in [-1, 1] and its rate from a WAV file (16-bit, 32-bit or float PCM)."""
    rate, data = wavfile.read(path)
    if data.dtype.kind in "iu":
        data = data.astype(np.float32) / np.iinfo(data.dtype).max
    return (data.mean(axis=1) if data.ndim == 2 else data).astype(np.float32), rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wav", type=Path, nargs="?", help="a WAV file; omit for a demo sentence")
    parser.add_argument("--hotwords", nargs="*", default=[], help="names to put in the prompt's hotword list")
    parser.add_argument("--bias", type=float, default=0.0, help="also bias decoding to the hotwords with this bonus")
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not (args.checkpoint / "recognizer.json").is_file():
        message = (
            f"no recogniser in {args.checkpoint}: make it with "
            "`python packages/ming-contextasr/benchmarks/train_recognizer.py --fresh`"
        )
        if args.wav is not None:
            raise SystemExit(message)
        print(message)  # the demo has nothing to show yet
        return
    asr = ContextASRRecognizer.from_pretrained(args.checkpoint)

    reference, entities = None, []
    if args.wav is None:
        from ming_testdata import SpeechOptions, make_speech

        utterance = make_speech(SpeechOptions(n=1, seed=424_242, voices=("en-gb-scotland",)))[0]
        audio, rate = utterance.audio, utterance.sample_rate
        reference, entities = utterance.transcript, [e.text for e in utterance.entities]
        args.hotwords = args.hotwords or entities
    else:
        audio, rate = read_wav(args.wav)

    for hotwords in ([], args.hotwords) if args.hotwords else ([],):
        request = ContextASRRequest(
            audio=audio, sample_rate=rate, allow_resample=True, hotwords=hotwords, language="English"
        )
        bias = [hotwords] if args.bias and hotwords else None
        text = asr.transcribe([request], bias_hotwords=bias, bonus=args.bias)[0].text
        print(f"hotwords {hotwords or '–'}: {text}")
        if reference is not None:
            score = score_utterance(reference, text, entities)
            print(f"  reference: {reference}  (WER {score.wer:.2f}, NE-FNR {score.ne_fnr:.2f})")


if __name__ == "__main__":
    main()
