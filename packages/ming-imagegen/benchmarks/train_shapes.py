"""Train the tiny pipeline on rendered shapes, text-to-image and recolouring edits together (paper §2.3, §2.4), and
show what it draws for prompts it never saw.

Run: ming-heavy python packages/ming-imagegen/benchmarks/train_shapes.py [--out DIR] [--steps N]
(about 19 minutes on one thread of a busy shared 2-core machine: 3000 image steps at about 0.31 s; it stops at a
checkpoint before ``--max-minutes`` and the same command resumes it). Remakes the checkpoint that
``benchmarks/bench_geneval.py`` and ming-genseg's ``benchmarks/bench_segment.py`` evaluate:
``MingImagePipeline.from_pretrained(DIR)`` (default ``~/.cache/ming/imagegen/shapes-tiny``, safetensors), with
``DIR-untrained`` (the same initialisation before training, the baseline), ``shapes_options.json`` (the shape world
and its held-out split) and ``training_summary.json`` next to the weights. The trainer's checkpoints and sample grids
go to ``DIR-run``: an interrupted run resumes from there when called again. With the checkpoint already made, only the
demonstration at the end runs (``--retrain`` trains anyway; delete ``DIR-run`` to start from scratch).

Data (:mod:`ming_testdata.shape_world`, made on the spot): 32×32 scenes of the training prompts of the six GenEval
categories (a quarter of each category's prompts is held out), and recolouring edits of objects in such scenes,
worded "make / color / paint <the object> <colour>", the object named by its shortest unique description or always
with its colour (half each). The LLM is the tiny Qwen2 of :func:`~ming_imagegen.tiny_language_model`, first pretrained
for ``LM_STEPS`` steps by next-token prediction on the texts of the training set (prompts and edit instructions;
:func:`~ming_imagegen.pretrain_language_model`), then frozen, as the paper freezes its pretrained MLLM: a *random* LM
passes the queries little of the prompt. The queries and connector learn at ``CONDITIONER_LR``, ten times below the
DiT, so that they do not collapse every prompt onto one condition in the first hundred steps, before the DiT reads it.
The DiT predicts the clean image (``PREDICTION``; a velocity output leaves unremoved noise in the images as speckle),
the pipeline keeps the moving average of the weights (``EMA_DECAY``) and the rate decays by a cosine over ``STEPS``.
``PREDICTION = "velocity"``, ``EMA_DECAY = None``, ``COSINE_DECAY = False``, ``STEPS = 1600`` is the previous recipe.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ming_imagegen import (
    EditingSample,
    GenerationSample,
    MingImagePipeline,
    TrainingRecipe,
    pretrain_language_model,
    tiny_language_model,
    tiny_pipeline,
    train_image_generator,
)
from ming_testdata.geneval import CheckerOptions, check_image
from ming_testdata.shape_world import (
    EDIT_TEMPLATES,
    GENEVAL_CATEGORIES,
    ShapesOptions,
    make_edit,
    render_sample,
    sample_specs,
    split_prompts,
)

DEFAULT_OUT = Path.home() / ".cache" / "ming" / "imagegen" / "shapes-tiny"
SHAPES = ShapesOptions(size=32)
GENERATION_SAMPLES = 4000
EDIT_SAMPLES = 2000
STEPS = 3000
BATCH = 16
LEARNING_RATE = 1e-3
CONDITIONER_LR = 1e-4
LM_STEPS = 600
TIMESTEPS = "logit_normal"
COSINE_DECAY = True
PREDICTION = "sample"  # the DiT predicts the clean image (returned as a velocity): no speckle of unremoved noise
EMA_DECAY: float | None = 0.99  # the pipeline keeps the moving average of the weights
CHUNK = 100  # steps between checkpoints, and between checks of the time budget
MODEL_SEED = 0


def training_samples(shapes: ShapesOptions) -> list[GenerationSample | EditingSample]:
    """Text-to-image pairs of training prompts (categories drawn evenly) and edits on scenes of training prompts."""
    train_specs = split_prompts(shapes).train
    specs = sample_specs(train_specs, GENERATION_SAMPLES, seed=0)
    samples: list[GenerationSample | EditingSample] = [
        GenerationSample(prompt=spec.text, image=render_sample(spec, seed, shapes).image)
        for seed, spec in enumerate(specs)
    ]
    every_spec = [spec for found in train_specs.values() for spec in found]
    for seed in range(EDIT_SAMPLES):
        template = EDIT_TEMPLATES[seed % len(EDIT_TEMPLATES)]
        edit = make_edit(every_spec, seed, shapes, template, name_color=seed % 2 == 1)
        samples.append(EditingSample(references=edit.reference.image, instruction=edit.instruction, target=edit.target))
    return samples


def recipe(run_dir: Path, steps: int, total: int, shapes: ShapesOptions, *, samples: bool) -> TrainingRecipe:
    """The recipe of the cached checkpoint, trained up to ``steps`` of ``total`` (the learning rate decays over
    ``total``); with ``samples`` the final grid shows held-out prompts and edits."""
    held_out = split_prompts(shapes).held_out
    every_held_out = [spec for found in held_out.values() for spec in found]
    edits = [make_edit(every_held_out, 10**6 + i, shapes) for i in range(3)] if samples else []
    return TrainingRecipe(
        output_dir=run_dir,
        steps=steps,
        decay_steps=total if COSINE_DECAY else None,
        batch_size=BATCH,
        learning_rate=LEARNING_RATE,
        conditioner_learning_rate=CONDITIONER_LR,
        timestep_sampling=TIMESTEPS,
        warmup_steps=50,
        ema_decay=EMA_DECAY,
        checkpoint_every=CHUNK,
        sample_prompts=[held_out[c][0].text for c in GENEVAL_CATEGORIES] if samples else [],
        sample_edits=[
            EditingSample(references=e.reference.image, instruction=e.instruction, target=e.target) for e in edits
        ],
        save_pipeline=False,
    )


def train_and_save(out: Path, steps: int, max_minutes: float) -> MingImagePipeline | None:
    """Train (or resume) the tiny pipeline on shapes, ``CHUNK`` steps at a time, and save it, its untrained
    initialisation and its metadata once ``steps`` are done; None when ``max_minutes`` ran out first (the run resumes
    from its last checkpoint when called again)."""
    start = time.perf_counter()
    samples = training_samples(SHAPES)
    print(f"{len(samples)} training samples made in {time.perf_counter() - start:.0f} s")
    untrained = out.with_name(out.name + "-untrained")
    if (untrained / "model_index.json").exists():  # a resumed run: the same pretrained LM and initialisation
        pipe = MingImagePipeline.from_pretrained(untrained)
    else:
        lm, tokenizer = tiny_language_model(seed=MODEL_SEED)
        texts = [s.prompt if isinstance(s, GenerationSample) else s.instruction for s in samples]
        lm_losses = pretrain_language_model(lm, tokenizer, texts, steps=LM_STEPS, seed=MODEL_SEED)
        print(f"LM pretrained: next-byte loss {np.mean(lm_losses[:20]):.3f} → {np.mean(lm_losses[-50:]):.3f}")
        pipe = tiny_pipeline(
            lm,
            tokenizer,
            image_size=SHAPES.size,
            glyph=False,
            identity=False,
            prediction_type=PREDICTION,
            seed=MODEL_SEED,
        )
        pipe.save_pretrained(untrained, safe_serialization=True)
    run_dir = out.with_name(out.name + "-run")
    done = max((int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*")), default=0)
    while True:  # at least once: a finished run's trainer call just returns its log
        chunk_start = time.perf_counter()
        target = min(steps, done + CHUNK)
        log = train_image_generator(pipe, samples, recipe(run_dir, target, steps, SHAPES, samples=target == steps))
        done = target
        if done >= steps:
            break
        elapsed, chunk = (time.perf_counter() - start) / 60, (time.perf_counter() - chunk_start) / 60
        if elapsed + chunk > max_minutes:
            print(f"stopped at step {done} of {steps} after {elapsed:.1f} min; run the same command to resume")
            return None
    pipe.save_pretrained(out, safe_serialization=True)
    (out / "shapes_options.json").write_text(SHAPES.model_dump_json(indent=2))
    first, last = float(np.mean(log.losses[:50])), float(np.mean(log.losses[-50:]))
    summary = {
        "steps": steps,
        "batch_size": BATCH,
        "loss_first_50": round(first, 4),
        "loss_last_50": round(last, 4),
        "description": (
            f"{steps} steps of {BATCH} samples ({GENERATION_SAMPLES} text-to-image pairs of training prompts + "
            f"{EDIT_SAMPLES} edits), AdamW {LEARNING_RATE:g} (queries and connector {CONDITIONER_LR:g})"
            f"{', cosine decay to 0' if COSINE_DECAY else ''}"
            f"{f', EMA of the weights (decay {EMA_DECAY:g})' if EMA_DECAY is not None else ''}, "
            f"DiT output: {'the clean image' if PREDICTION == 'sample' else 'the velocity'}, LM "
            f"pretrained {LM_STEPS} steps on the training texts then frozen, flow times σ "
            f"{TIMESTEPS.replace('_', '-')}, one CPU thread; flow-matching loss "
            f"{first:.3f} over the first 50 steps → {last:.3f} over the last 50"
        ),
    }
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"done: loss {first:.3f} → {last:.3f}; saved to {out}")
    return pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where save_pretrained writes the pipeline")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--retrain", action="store_true", help="train (or resume DIR-run) even if DIR exists")
    parser.add_argument("--max-minutes", type=float, default=24.0, help="stop at a checkpoint before this")
    args = parser.parse_args()
    torch.set_num_threads(1)  # thousands of small ops: a second thread costs more than it gains on a shared 2-core box
    if args.retrain or not (args.out / "model_index.json").exists():
        pipe = train_and_save(args.out, args.steps, args.max_minutes)
        if pipe is None:
            return
    else:
        pipe = MingImagePipeline.from_pretrained(args.out)
        print(f"loaded {args.out} (--retrain to train again)")

    held_out = split_prompts(SHAPES).held_out
    checker = CheckerOptions.for_shapes(SHAPES)
    specs = [held_out[c][i] for c in GENEVAL_CATEGORIES for i in range(min(2, len(held_out[c])))]
    images = pipe([s.text for s in specs], seed=0).images
    for spec, image in zip(specs, images, strict=True):
        check = check_image(image, spec, checker)
        print(f"{spec.category:>13} | {spec.text:<40} | {'pass' if check.passed else '; '.join(check.failures)}")


if __name__ == "__main__":
    main()
