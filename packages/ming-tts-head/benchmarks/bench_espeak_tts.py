"""Held-out quality of the TTS head trained on espeak-ng speech latents, beside the same head untrained.

The head is the one train_espeak_tts.py makes.

For each held-out digit sequence: generated vs reference duration (Pearson correlation, mean absolute error) — the
whole length, and the speech end (the last loud 20 ms frame, which ignores trailing silence and counts a trailing
burst of sound) — the DTW-aligned log-mel L1 distance of the decoded audio to the espeak-ng recording, and — when
the digit recogniser that train_digit_recogniser.py makes exists — the word error rate of its transcripts.
Reference rows: the speech tokenizer's own reconstruction of the recording (the floor this head can reach through
that decoder), the same sentence said by a voice that neither the head nor the recogniser was trained on, and the
recording of another held-out sentence (right voice, wrong words). Writes ``results/espeak_tts.json``, WAVs of the
first sentences under ``<checkpoint>/samples/`` and spectrogram and duration plots under ``docs/figures/``. The
sampler settings are the ones tune_espeak_generation.py chose on validation sentences
(``<checkpoint>/generation.json``), else the paper's.

    python packages/ming-tts-head/benchmarks/bench_espeak_tts.py [--checkpoint DIR] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib
import numpy as np
import scipy.io.wavfile
import torch
from espeak_corpus import (
    CHECKPOINT_DIR,
    PITCH,
    SPEED,
    TOKENIZER_DIR,
    VOICE,
    Clip,
    load_tokenizer,
    make_clips,
    sentences,
    speech_frames,
)
from matplotlib import pyplot as plt
from mel_distance import SAMPLE_RATE, log_mel, mel_distance
from report import machine, write_result
from train_digit_recogniser import RECOGNISER_DIR, UNSEEN_VOICE

from ming_testdata import speak
from ming_tts_head import GenerationOptions, TTSHeadModel, synthesize

FIGURES = Path(__file__).resolve().parents[3] / "docs" / "figures"
FRAME_S = 0.02
REFERENCE, RECONSTRUCTION, TRAINED, UNTRAINED, UNSEEN, OTHER = (
    "espeak-ng recording (reference)",
    "tokenizer encode → decode of the recording",
    "TTS head, trained",
    "TTS head, untrained (random init)",
    f"same sentence, unseen voice ({UNSEEN_VOICE})",
    "recording of another held-out sentence",
)
MAX_WORDS = 16  # longest transcript decoded: 6 words per sentence at most, so room for insertions


def transcribe(recogniser_dir: Path, audios: dict[str, list[torch.Tensor]]) -> dict[str, list[str]] | None:
    """Transcripts of every audio by the digit recogniser (a ming-contextasr ContextASRRecognizer, no context), or
    None without one."""
    if not recogniser_dir.is_dir():
        return None
    from ming_contextasr import ContextASRRecognizer, ContextASRRequest

    recogniser = ContextASRRecognizer.from_pretrained(recogniser_dir)
    return {
        name: [
            t.text for t in recogniser.transcribe([ContextASRRequest(audio=a) for a in clips], max_new_tokens=MAX_WORDS)
        ]
        for name, clips in audios.items()
    }


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER with ming-contextasr's scorer (ContextASR-Bench normalisation)."""
    from ming_contextasr import score_corpus, score_utterance

    return score_corpus(score_utterance(r, h) for r, h in zip(references, hypotheses, strict=True)).wer


def word_count_r(references: list[str], hypotheses: list[str]) -> str:
    """Pearson correlation of the recognised and the said number of words over the sentences."""
    counts = torch.tensor([[len(t.split()) for t in references], [len(t.split()) for t in hypotheses]], dtype=float)
    return f"{torch.corrcoef(counts)[0, 1]:.2f}" if counts[1].std() > 0 else "— (all equal)"


def write_wavs(folder: Path, clips: list[Clip], audios: dict[str, list[torch.Tensor]], count: int) -> None:
    """16-bit WAVs of the first ``count`` sentences: reference, reconstruction, trained and untrained head."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {REFERENCE: "reference", RECONSTRUCTION: "reconstruction", TRAINED: "trained", UNTRAINED: "untrained"}
    for i, clip in enumerate(clips[:count]):
        for name, short in names.items():
            pcm = (audios[name][i].clamp(-1, 1) * 32767).round().short().numpy()
            scipy.io.wavfile.write(folder / f"{i:02d}_{clip.text.replace(' ', '-')}_{short}.wav", SAMPLE_RATE, pcm)


def plot_spectrograms(path: Path, clips: list[Clip], audios: dict[str, list[torch.Tensor]], count: int) -> None:
    """Log-mel spectrograms of the first ``count`` sentences: reference, trained and untrained head, on one time
    axis and one colour scale per sentence."""
    names = (REFERENCE, TRAINED, UNTRAINED)
    figure, axes = plt.subplots(count, len(names), figsize=(10, 1.9 * count), squeeze=False)
    for i in range(count):
        mels = [log_mel(audios[name][i]).T.numpy() for name in names]
        seconds = max(mel.shape[1] for mel in mels) / 100
        top = max(mel.max() for mel in mels)
        for axis, name, mel in zip(axes[i], names, mels, strict=True):
            extent = (0, mel.shape[1] / 100, 0, mel.shape[0])
            axis.imshow(mel, origin="lower", aspect="auto", cmap="magma", extent=extent, vmin=top - 12, vmax=top)
            axis.set_xlim(0, seconds)
            axis.set_title(f"{name.split(' (')[0]}: “{clips[i].text}”", fontsize=8)
            axis.set_xlabel("s", fontsize=7)
            axis.set_ylabel("mel bin", fontsize=7)
            axis.tick_params(labelsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=72)
    plt.close(figure)


def plot_training(path: Path, losses: dict[str, list[float]], durations: dict[str, tuple[list[float], list[float]]]):
    """The smoothed flow-matching loss of the run, and generated vs reference speech ends of the held-out sentences."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    flow = np.asarray(losses["flow"])
    window = max(1, len(flow) // 100)
    smooth = np.convolve(flow, np.ones(window) / window, mode="valid")
    left.plot(np.arange(len(smooth)) + window, smooth)
    left.set(xlabel="step", ylabel="flow-matching loss", title=f"training (mean over {window} steps)")
    for name, (generated, reference) in durations.items():
        right.scatter(reference, generated, s=10, label=name)
    top = max(max(g + r) for g, r in durations.values())
    right.plot([0, top], [0, top], color="grey", linewidth=0.8)
    right.set(xlabel="reference speech end, s", ylabel="generated speech end, s", title="held-out sentences")
    right.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=72)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER_DIR)
    parser.add_argument("--recogniser", type=Path, default=RECOGNISER_DIR)
    parser.add_argument("--wavs", type=int, default=4, help="held-out sentences written as WAVs")
    parser.add_argument("--figures", type=Path, default=FIGURES)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "espeak_tts.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    matplotlib.use("Agg")

    if not (args.checkpoint / "training.json").is_file():
        raise SystemExit(f"no trained head at {args.checkpoint}: run train_espeak_tts.py first")
    training = json.loads((args.checkpoint / "training.json").read_text())
    tokenizer = load_tokenizer(args.tokenizer)
    if not math.isclose(training["latent_scaling_factor"], tokenizer.config.latent_scaling_factor, rel_tol=1e-6):
        raise SystemExit(f"the head was trained on latents of another tokenizer than {args.tokenizer}")
    trained = TTSHeadModel.from_pretrained(args.checkpoint).eval()
    torch.manual_seed(0)  # the initialisation the training run started from
    untrained = TTSHeadModel(trained.config).eval()

    _, held_out = sentences()
    clips = make_clips(held_out, tokenizer)
    longest = max(c.latents.shape[0] for c in clips)
    chosen = args.checkpoint / "generation.json"
    tuned = json.loads(chosen.read_text()) if chosen.is_file() else {}
    options = GenerationOptions(
        min_patches=4,
        max_patches=2 * math.ceil(longest / trained.config.patch_size),
        **{name: tuned[name] for name in ("cfg_scale", "sway_coefficient") if name in tuned},
    )
    latents = {
        name: synthesize(model, [c.text_ids for c in clips], options, progress=True)
        for name, model in ((TRAINED, trained), (UNTRAINED, untrained))
    }
    audios = {
        REFERENCE: [c.audio for c in clips],
        RECONSTRUCTION: [tokenizer.decode(c.latents[None])[0, : c.audio.numel()] for c in clips],
        **{name: [tokenizer.decode(x)[0] for x in generated] for name, generated in latents.items()},
        UNSEEN: [torch.from_numpy(speak(c.text, UNSEEN_VOICE, speed=SPEED, pitch=PITCH)) for c in clips],
    }
    transcripts = transcribe(args.recogniser, audios)
    audios[OTHER] = audios[REFERENCE][1:] + audios[REFERENCE][:1]
    if transcripts is not None:
        transcripts[OTHER] = transcripts[REFERENCE][1:] + transcripts[REFERENCE][:1]

    reference_s = [c.audio.numel() / SAMPLE_RATE for c in clips]
    reference_end = torch.tensor([speech_frames(c.audio) * FRAME_S for c in clips], dtype=torch.float64)
    rows, durations = [], {}
    for name, speech in audios.items():
        if name in latents:
            seconds = [x.shape[1] * FRAME_S for x in latents[name]]
        else:
            seconds = [a.numel() / SAMPLE_RATE for a in speech]
        pair = torch.tensor([seconds, reference_s], dtype=torch.float64)
        ends = torch.tensor([speech_frames(a) * FRAME_S for a in speech], dtype=torch.float64)
        if name in latents:
            durations[name.removeprefix("TTS head, ")] = (ends.tolist(), reference_end.tolist())
        distances = [mel_distance(a, r) for a, r in zip(speech, audios[REFERENCE], strict=True)]
        rows.append(
            {
                "speech": name,
                "mean duration s": f"{pair[0].mean():.2f}",
                "duration r": f"{torch.corrcoef(pair)[0, 1]:.3f}" if pair[0].std() > 0 else "— (all equal)",
                "duration MAE ms": f"{(pair[0] - pair[1]).abs().mean() * 1e3:.0f}",
                "speech end r": f"{torch.corrcoef(torch.stack([ends, reference_end]))[0, 1]:.3f}"
                if ends.std() > 0
                else "— (all equal)",
                "speech end MAE ms": f"{(ends - reference_end).abs().mean() * 1e3:.0f}",
                "DTW log-mel L1": f"{np.mean(distances):.3f} ± {np.std(distances) / math.sqrt(len(distances)):.3f}",
                "WER %": "not measured"
                if transcripts is None
                else f"{100 * word_error_rate(held_out, transcripts[name]):.1f}",
                "words heard r": "not measured" if transcripts is None else word_count_r(held_out, transcripts[name]),
            }
        )

    recogniser_note = f"not measured: no recogniser at {args.recogniser} (make it with train_digit_recogniser.py)."
    if transcripts is not None:
        recipe = json.loads((args.recogniser / "training.json").read_text())
        voices = recipe["voices"]
        share = recipe["recipe"]["round_trip_share"]
        round_trips = f"{share:.0%} of them through the tokenizer's encode → decode" if share else "as recorded"
        recogniser_note = (
            f"the digit recogniser at {args.recogniser} (ming-contextasr's ContextASRRecognizer, "
            f"{recipe['parameters'] / 1e3:.0f} k parameters, no context, greedy, at most {MAX_WORDS} words), trained "
            f"by train_digit_recogniser.py for {recipe['steps']} steps ({recipe['cpu_seconds'] / 60:.1f} CPU min) on "
            f"{recipe['train_sentences']} other digit sequences in {voices['tts'][0]} and "
            f"{', '.join(voices['others'])}, {round_trips}; it never heard these sentences nor "
            f"{UNSEEN_VOICE}. Scored with ming-contextasr's ContextASR-Bench normaliser and WER "
            "against the digit words (insertions count, so WER can exceed 100 %). Words heard r: Pearson correlation "
            "of the number of words in the transcript and in the sentence."
        )
    limit = options.max_patches * trained.config.patch_size
    hit_limit = {name: sum(x.shape[1] >= limit for x in generated) for name, generated in latents.items()}
    steps = training["recipe"]["steps"]
    write_wavs(args.checkpoint / "samples", clips, audios, args.wavs)
    args.figures.mkdir(parents=True, exist_ok=True)
    plot_spectrograms(args.figures / "tts_head_espeak_spectrograms.png", clips, audios, 2)
    plot_training(args.figures / "tts_head_espeak_training.png", training["losses"], durations)
    notes = [
        f"{len(clips)} held-out sequences of 2–6 digit words (none in the {training['train_sentences']} training "
        f"sentences), espeak-ng voice {VOICE}; text = one id per digit word. The head "
        f"({sum(p.numel() for p in trained.parameters()) / 1e6:.2f} M parameters) was trained {steps} steps by "
        f"train_espeak_tts.py on latents of the tiny speech tokenizer at "
        f"{training['tokenizer']}; the untrained row is the same architecture at its initialisation (seed 0).",
        f"Generation: synthesize() with 10 EPSS Euler steps, CFG {options.cfg_scale:g}, sway "
        f"{options.sway_coefficient} ("
        + (f"chosen on validation sentences by tune_espeak_generation.py, {chosen}" if tuned else "the paper's")
        + f"), min_patches {options.min_patches}, max_patches "
        f"{options.max_patches} (twice the longest reference); reaching max_patches: "
        + ", ".join(f"{name} {count}/{len(clips)}" for name, count in hit_limit.items())
        + ".",
        "Duration r: Pearson correlation of generated (or other) and reference durations over the held-out "
        "sentences; MAE: mean absolute difference; duration: the whole length (generated: its latent frames; the "
        "recordings end with about 340 ms of silence), speech end: the end of the last 20 ms frame whose RMS exceeds "
        "2 % of the clip's loudest. DTW log-mel L1: 80-bin natural-log mel spectrogram (10 ms hop), "
        "mean |difference| per bin along the dynamic-time-warping path to the reference recording, mean ± standard "
        "error over sentences; lower is closer.",
        "WER: " + recogniser_note,
        f"WAVs of the first {args.wavs} sentences (reference, reconstruction, trained, untrained) are written to "
        f"{args.checkpoint / 'samples'} (outside git); plots: docs/figures/tts_head_espeak_spectrograms.png, "
        "docs/figures/tts_head_espeak_training.png.",
    ]
    write_result(
        args.out,
        f"TTS head trained on espeak-ng speech latents ({steps} steps) vs untrained: held-out sentences",
        machine(1),
        rows,
        notes,
    )


if __name__ == "__main__":
    main()
