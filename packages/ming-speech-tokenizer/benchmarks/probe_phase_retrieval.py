"""Diagnostic: are a trained tokenizer's magnitudes or its phases what loses to Griffin-Lim on held-out clips?

Scores, on ``bench_quality.py``'s held-out clips, the tokenizer as it decodes and Griffin-Lim run in the head's own
frame layout (``ISTFTHead.analyze`` / ``place``, 32 iterations) on the model's magnitudes (from a seeded random
phase, and from the model's own phases) and on the input's own, each also smoothed through the 64-band mel (mel
filterbank, then torchaudio's ``InverseMelScale``), which keeps the band energies over time and drops the fine
structure. Griffin-Lim from the 64-band 50 Hz mel, the issue's floor, is measured in the same call. If Griffin-Lim
on the model's magnitudes falls below the mel floor, the magnitudes (not only the phases) are behind; if it does so
after both are smoothed, it is their band energies over time. Any ``save_pretrained`` folder or trainer
checkpoint works, e.g. a pilot's ``checkpoint-0002400``. Writes results/probe_phase_retrieval.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_quality import GRIFFIN_LIM_MELS, GRIFFIN_LIM_N_FFT, SAMPLE_RATE, griffin_lim_reconstruction, scores
from report import write_result
from torchaudio.functional import melscale_fbanks
from torchaudio.transforms import InverseMelScale
from train_tiny_espeak import HELD_OUT_SPEECH, speech_clips

from ming_speech_tokenizer import ISTFTHead, MultiScaleMelLoss, SpeechTokenizerModel

ITERATIONS = 32  # as the mel floor's Griffin-Lim


def griffin_lim_in_head_layout(head: ISTFTHead, log_magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """Griffin-Lim with the head's own analysis and overlap-add: keep the magnitudes, take the phases of the
    re-analysed waveform, ``ITERATIONS`` times; returns the waveform ``(B, T · hop)``."""
    magnitude = log_magnitude.clamp(max=head.max_log_magnitude).exp()
    for _ in range(ITERATIONS):
        phase = head.analyze(head.place(head.synthesize(torch.polar(magnitude, phase)))).angle()
    return head.place(head.synthesize(torch.polar(magnitude, phase)))


def mel_smoothed(head: ISTFTHead, log_magnitude: torch.Tensor) -> torch.Tensor:
    """Log-magnitudes ``(B, T, bins)`` through the ``GRIFFIN_LIM_MELS``-band mel filterbank and back (least squares,
    non-negative), as the mel floor sees a spectrum."""
    filterbank = melscale_fbanks(head.bins, 0.0, SAMPLE_RATE / 2, GRIFFIN_LIM_MELS, SAMPLE_RATE)
    bands = log_magnitude.clamp(max=head.max_log_magnitude).exp() @ filterbank
    inverse = InverseMelScale(head.bins, GRIFFIN_LIM_MELS, SAMPLE_RATE)
    return inverse(bands.transpose(1, 2)).transpose(1, 2).clamp(min=1e-7).log()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a save_pretrained folder or a trainer checkpoint-N folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "probe_phase_retrieval.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = SpeechTokenizerModel.from_pretrained(args.checkpoint).eval()
    head, hop = model.decoder.head, model.config.hop_length
    tail = model.config.latency_frames * hop
    mel_floor = griffin_lim_reconstruction(GRIFFIN_LIM_N_FFT, hop, ITERATIONS)
    mel_distance = MultiScaleMelLoss(SAMPLE_RATE)
    systems = {
        "model": "tokenizer as it decodes (its magnitudes and phases)",
        "gl model random": f"Griffin-Lim ({ITERATIONS} it., head layout) on the model's magnitudes, random start",
        "gl model phases": f"Griffin-Lim ({ITERATIONS} it., head layout) on the model's magnitudes, from its phases",
        "gl input": f"Griffin-Lim ({ITERATIONS} it., head layout) on the input's magnitudes, random start",
        "gl model mel": f"Griffin-Lim ({ITERATIONS} it., head layout) on the model's magnitudes, mel-smoothed",
        "gl input mel": f"Griffin-Lim ({ITERATIONS} it., head layout) on the input's magnitudes, mel-smoothed",
        "mel floor": f"Griffin-Lim ({GRIFFIN_LIM_MELS}-band 50 Hz mel, {ITERATIONS} it.): the issue's floor",
    }
    per_clip: dict[str, list[dict[str, float]]] = {label: [] for label in systems}
    with torch.no_grad():
        for clip in speech_clips(HELD_OUT_SPEECH):
            wave = F.pad(clip, (0, tail + -(clip.numel() + tail) % hop))[None]
            latents = model.encode(wave, SAMPLE_RATE) / model.config.latent_scaling_factor
            log_magnitude, phase = head.log_magnitude_and_phase(model.decoder(latents)[0], latents)
            torch.manual_seed(0)
            random_phase = (torch.rand_like(phase) * 2 - 1) * torch.pi
            input_log_magnitude = head.analyze(wave).abs().clamp(min=1e-7).log()
            outputs = {
                "model": head.place(head.synthesize(head.polar(log_magnitude, phase))),
                "gl model random": griffin_lim_in_head_layout(head, log_magnitude, random_phase),
                "gl model phases": griffin_lim_in_head_layout(head, log_magnitude, phase),
                "gl input": griffin_lim_in_head_layout(head, input_log_magnitude, random_phase),
                "gl model mel": griffin_lim_in_head_layout(head, mel_smoothed(head, log_magnitude), random_phase),
                "gl input mel": griffin_lim_in_head_layout(head, mel_smoothed(head, input_log_magnitude), random_phase),
            }
            for label, output in outputs.items():
                per_clip[label].append(scores(clip, output[0, : clip.numel()], mel_distance))
            per_clip["mel floor"].append(scores(clip, mel_floor(clip), mel_distance))
    rows = []
    for label, name in systems.items():
        means = {key: float(np.mean([s[key] for s in per_clip[label]])) for key in per_clip[label][0]}
        rows.append(
            {
                "system": name,
                "mel distance ↓": f"{means['mel']:.3f}",
                "STOI ↑": f"{means['stoi']:.3f}",
                "PESQ (wb) ↑": f"{means['pesq']:.2f}",
                "RMS level": f"{means['level']:.2f}",
            }
        )
        print(" | ".join(rows[-1].values()))
    write_result(
        args.out,
        "Phase retrieval on a trained tokenizer's magnitudes: held-out clips",
        f"probe_phase_retrieval.py {args.checkpoint}",
        rows,
        f"{len(per_clip['model'])} held-out clips of bench_quality.py; means over clips. Checkpoint {args.checkpoint}.",
    )


if __name__ == "__main__":
    main()
