"""Choose the sampler settings of the espeak-ng TTS head on validation sentences, never on the held-out ones.

    python packages/ming-tts-head/benchmarks/tune_espeak_generation.py [--checkpoint DIR] [--seeds 2]

For every classifier-free guidance scale and sway coefficient of a small grid, the head made by
train_espeak_tts.py speaks espeak_corpus.py's validation sentences (in neither its training nor its held-out set);
the digit recogniser made by train_digit_recogniser.py transcribes the decoded audio. The setting with the lowest
word error rate (mean over ``--seeds`` noise seeds) is written to ``<checkpoint>/generation.json``, which
bench_espeak_tts.py and integration_tests/test_tts_wer.py read; the table goes to
``results/espeak_generation_validation.json``. About 5 CPU minutes.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from bench_espeak_tts import MAX_WORDS, word_error_rate
from espeak_corpus import CHECKPOINT_DIR, TOKENIZER_DIR, load_tokenizer, make_clips, speech_frames, validation_sentences
from report import machine, write_result
from train_digit_recogniser import RECOGNISER_DIR, training_sentences

from ming_contextasr import ContextASRRecognizer, ContextASRRequest
from ming_tts_head import GenerationOptions, TTSHeadModel, synthesize

CFG_SCALES = (1.0, 2.0, 3.0, 4.0)
SWAY_COEFFICIENTS = (None, -1.0)
FRAME_S = 0.02


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT_DIR)
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER_DIR)
    parser.add_argument("--recogniser", type=Path, default=RECOGNISER_DIR)
    parser.add_argument("--seeds", type=int, default=2, help="noise seeds per setting")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "espeak_generation_validation.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    tokenizer = load_tokenizer(args.tokenizer)
    model = TTSHeadModel.from_pretrained(args.checkpoint).eval()
    recogniser = ContextASRRecognizer.from_pretrained(args.recogniser)
    recogniser_recipe = json.loads((args.recogniser / "training.json").read_text())
    texts = validation_sentences()
    clips = make_clips(texts, tokenizer)
    reference_end = torch.tensor([speech_frames(c.audio) * FRAME_S for c in clips], dtype=torch.float64)
    longest = max(c.latents.shape[0] for c in clips)
    max_patches = 2 * math.ceil(longest / model.config.patch_size)

    rows, scores = [], {}
    for cfg_scale in CFG_SCALES:
        for sway in SWAY_COEFFICIENTS:
            wers, ends = [], []
            for seed in range(args.seeds):
                options = GenerationOptions(
                    cfg_scale=cfg_scale, sway_coefficient=sway, min_patches=4, max_patches=max_patches, seed=seed
                )
                audio = [tokenizer.decode(x)[0] for x in synthesize(model, [c.text_ids for c in clips], options)]
                said = recogniser.transcribe([ContextASRRequest(audio=a) for a in audio], max_new_tokens=MAX_WORDS)
                wers.append(word_error_rate(texts, [t.text for t in said]))
                ends.append(torch.tensor([speech_frames(a) * FRAME_S for a in audio], dtype=torch.float64))
            end = torch.stack(ends)
            r = np.mean([float(torch.corrcoef(torch.stack([e, reference_end]))[0, 1]) for e in end])
            scores[(cfg_scale, sway)] = float(np.mean(wers))
            rows.append(
                {
                    "CFG scale": cfg_scale,
                    "sway": "none" if sway is None else sway,
                    "WER %": f"{100 * np.mean(wers):.1f}"
                    + (f" ({', '.join(f'{100 * w:.1f}' for w in wers)})" if args.seeds > 1 else ""),
                    "speech end r": f"{r:.3f}",
                    "speech end MAE ms": f"{(end - reference_end).abs().mean() * 1e3:.0f}",
                }
            )
            print(rows[-1], flush=True)

    cfg_scale, sway = min(scores, key=scores.get)
    chosen = {
        "cfg_scale": cfg_scale,
        "sway_coefficient": sway,
        "chosen_by": "tune_espeak_generation.py: lowest mean WER on espeak_corpus.validation_sentences()",
        "validation_wer": scores[(cfg_scale, sway)],
    }
    (args.checkpoint / "generation.json").write_text(json.dumps(chosen, indent=2) + "\n")
    recipe = recogniser_recipe["recipe"]
    recogniser_seen = set(training_sentences(recipe["sentences"], recipe["seed"], tuple(recipe["words"])))
    overlap = sum(text in recogniser_seen for text in texts)
    write_result(
        args.out,
        "Sampler settings of the espeak-ng TTS head on validation sentences (chosen here, not on the held-out ones)",
        machine(1),
        rows,
        [
            f"{len(texts)} validation sequences of 2–6 digit words, in neither the head's training nor its held-out "
            f"set ({overlap} of them, mostly two-word ones, are among the digit recogniser's training sentences). "
            f"10 EPSS Euler steps, min_patches 4, max_patches {max_patches}; WER: mean over noise seeds "
            f"0–{args.seeds - 1} (each in brackets) of the digit recogniser's corpus WER. Speech end: time of the "
            "last 20 ms frame louder than 2 % of the clip's loudest, generated audio vs recording (r, mean absolute "
            "error, over sentences and seeds).",
            f"Chosen: CFG {cfg_scale}, sway {sway}; written to {args.checkpoint / 'generation.json'}.",
        ],
        command="python packages/ming-tts-head/benchmarks/tune_espeak_generation.py",
    )


if __name__ == "__main__":
    main()
