"""Train the tiny pipeline on rendered shapes, text-to-image and recolouring edits together (paper §2.3, §2.4), choose
its guidance scale on validation prompts, and show what it draws for prompts it never saw.

Run: ming-heavy python packages/ming-imagegen/benchmarks/train_shapes.py [--out DIR] [--steps N]
(about 20 minutes on one thread of a busy shared 2-core machine: 4000 image steps at 0.24–0.31 s; it stops at a
checkpoint before ``--max-minutes`` and the same command resumes it). Remakes the checkpoint that
``benchmarks/bench_geneval.py`` and ming-genseg's ``benchmarks/bench_segment.py`` evaluate:
``MingImagePipeline.from_pretrained(DIR)`` (default ``~/.cache/ming/imagegen/shapes-tiny``, safetensors), with
``DIR-untrained`` (the same initialisation before training, the baseline), ``shapes_options.json`` (the shape world
and its held-out split) and ``training_summary.json`` next to the weights. The trainer's checkpoints and sample grids
go to ``DIR-run``: an interrupted run resumes from there when called again. With the checkpoint already made, only the
demonstration at the end runs (``--retrain`` trains anyway; delete ``DIR-run`` to start from scratch).

Data (:mod:`ming_testdata.shape_world`, made on the spot): 32×32 scenes of the training prompts of the six GenEval
categories, and recolouring edits of objects in such scenes, worded "make / color / paint <the object> <colour>", the
object named by its shortest unique description or always with its colour (half each). Three disjoint prompt sets
(:func:`data_split`): a quarter of each category's prompts is the held-out test set (scored only by
``bench_geneval.py``); a fifth of the rest is the validation set (``VALIDATION_SHARE``; none for single objects, which
keep only two training prompts); the remainder is trained on. The LLM is the tiny Qwen2 of
:func:`~ming_imagegen.tiny_language_model`, first pretrained for ``LM_STEPS`` steps by next-token prediction on the
texts of the training set (prompts and edit instructions; :func:`~ming_imagegen.pretrain_language_model`), then
frozen, as the paper freezes its pretrained MLLM: a *random* LM passes the queries little of the prompt. The queries
and connector learn at ``CONDITIONER_LR``, well below the DiT, so that they do not collapse every prompt onto one
condition in the first hundred steps, before the DiT reads it. The DiT predicts the clean image (``PREDICTION``; a
velocity output leaves unremoved noise in the images as speckle), the pipeline keeps the moving average of the weights
(``EMA_DECAY``) and the rate decays by a cosine over ``STEPS``. After training, the text guidance scale of
``GUIDANCE_CANDIDATES`` with the best mini-GenEval on the validation prompts, and the editing text scale of
``EDIT_GUIDANCE_CANDIDATES`` with the most right recolouring edits on scenes of them, become the saved pipeline's
defaults (``MingImagePipeline.default_options``); the per-scale validation scores go to ``training_summary.json`` and,
for the default ``DIR``, to ``results/guidance_validation.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
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
from ming_testdata.geneval import CheckerOptions, check_edit, check_image, score_edits, score_images
from ming_testdata.results import describe_machine, write_results
from ming_testdata.shape_world import (
    EDIT_TEMPLATES,
    GENEVAL_CATEGORIES,
    Category,
    PromptSpec,
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
STEPS = 4000
BATCH = 16
LEARNING_RATE = 2e-3
CONDITIONER_LR = 1e-4
LM_STEPS = 600
TIMESTEPS = "logit_normal"
LOGIT_MEAN = 0.8  # σ drawn as sigmoid(N(0.8, 1)): more steps at high noise, where colours and layout are decided
COSINE_DECAY = True
PREDICTION = "sample"  # the DiT predicts the clean image (returned as a velocity): no speckle of unremoved noise
EMA_DECAY: float | None = 0.99  # the pipeline keeps the moving average of the weights
CHUNK = 100  # steps between checkpoints, and between checks of the time budget
MODEL_SEED = 0
VALIDATION_SHARE = 0.2  # of each category's training prompts, kept out of training to choose the guidance scale
VALIDATION_SEED = 1
VALIDATION_IMAGES = 24  # per category and guidance scale
GUIDANCE_CANDIDATES = (1.0, 1.5, 2.0, 3.0, 5.0)
VALIDATION_EDITS = 48
EDIT_GUIDANCE_CANDIDATES = (1.5, 2.0, 3.0, 5.0, 7.5)
VALIDATION_SEED_BASE = 5_000_000


@dataclass(frozen=True)
class DataSplit:
    """Prompts per category: trained on, validation (chooses the guidance scale), test (the held-out prompts of
    :func:`~ming_testdata.shape_world.split_prompts`, scored by ``bench_geneval.py`` only). Pairwise disjoint."""

    train: dict[Category, tuple[PromptSpec, ...]]
    validation: dict[Category, tuple[PromptSpec, ...]]
    test: dict[Category, tuple[PromptSpec, ...]]


def data_split(shapes: ShapesOptions) -> DataSplit:
    """Hold ``VALIDATION_SHARE`` of each category's training prompts (seeded permutation) out for validation, as
    long as at least two stay for training: single objects (two training prompts) have no validation prompt."""
    split = split_prompts(shapes)
    train, validation = {}, {}
    for index, (category, specs) in enumerate(split.train.items()):
        order = np.random.default_rng(np.random.SeedSequence(VALIDATION_SEED, spawn_key=(index,))).permutation(
            len(specs)
        )
        n = min(len(specs) - 2, max(1, round(VALIDATION_SHARE * len(specs)))) if len(specs) > 2 else 0
        held = set(order[:n].tolist())
        validation[category] = tuple(s for i, s in enumerate(specs) if i in held)
        train[category] = tuple(s for i, s in enumerate(specs) if i not in held)
    return DataSplit(train, validation, split.held_out)


def training_samples(shapes: ShapesOptions) -> list[GenerationSample | EditingSample]:
    """Text-to-image pairs of training prompts (categories drawn evenly) and edits on scenes of training prompts."""
    train_specs = data_split(shapes).train
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


def recipe(
    run_dir: Path,
    steps: int,
    total: int,
    shapes: ShapesOptions,
    *,
    samples: bool,
    learning_rate: float,
    logit_mean: float,
) -> TrainingRecipe:
    """The recipe of the cached checkpoint, trained up to ``steps`` of ``total`` (the learning rate decays over
    ``total``); with ``samples`` the final grid shows held-out prompts and edits."""
    held_out = data_split(shapes).test
    every_held_out = [spec for found in held_out.values() for spec in found]
    edits = [make_edit(every_held_out, 10**6 + i, shapes) for i in range(3)] if samples else []
    return TrainingRecipe(
        output_dir=run_dir,
        steps=steps,
        decay_steps=total if COSINE_DECAY else None,
        batch_size=BATCH,
        learning_rate=learning_rate,
        conditioner_learning_rate=CONDITIONER_LR,
        timestep_sampling=TIMESTEPS,
        logit_mean=logit_mean,
        warmup_steps=50,
        ema_decay=EMA_DECAY,
        checkpoint_every=CHUNK,
        sample_prompts=[held_out[c][0].text for c in GENEVAL_CATEGORIES] if samples else [],
        sample_edits=[
            EditingSample(references=e.reference.image, instruction=e.instruction, target=e.target) for e in edits
        ],
        save_pipeline=False,
    )


def choose_guidance(pipe: MingImagePipeline, shapes: ShapesOptions) -> tuple[float, dict[str, dict]]:
    """Score ``VALIDATION_IMAGES`` images per category of the validation prompts (in turn) at each scale of
    ``GUIDANCE_CANDIDATES``; the scale with the best overall score wins (a tie: the smaller scale)."""
    validation = data_split(shapes).validation
    checker = CheckerOptions.for_shapes(shapes)
    specs = [found[i % len(found)] for found in validation.values() if found for i in range(VALIDATION_IMAGES)]
    pipe.set_progress_bar_config(disable=True)
    results: dict[str, dict] = {}
    for scale in GUIDANCE_CANDIDATES:
        images = []
        for start in range(0, len(specs), 16):  # seeds apart from the test images' (bench_geneval.py: from 0)
            chunk = [s.text for s in specs[start : start + 16]]
            images += pipe(chunk, seed=VALIDATION_SEED_BASE + start, guidance_scale=scale).images
        scores = score_images(images, specs, checker)
        results[f"{scale:g}"] = {
            "overall": round(scores.overall, 4),
            **{c: round(v, 4) for c, v in scores.categories.items()},
        }
        print(f"validation, text guidance {scale:g}: overall {scores.overall:.3f} {results[f'{scale:g}']}")
    best = max(GUIDANCE_CANDIDATES, key=lambda s: results[f"{s:g}"]["overall"])
    return best, results


def choose_edit_guidance(pipe: MingImagePipeline, shapes: ShapesOptions) -> tuple[float, dict[str, dict]]:
    """Run ``VALIDATION_EDITS`` recolouring edits on scenes of the validation prompts at each text scale of
    ``EDIT_GUIDANCE_CANDIDATES`` (image scale at its default); the scale with the most right edits wins (a tie: the
    smaller scale)."""
    validation = [spec for found in data_split(shapes).validation.values() for spec in found]
    checker = CheckerOptions.for_shapes(shapes)
    edits = [make_edit(validation, VALIDATION_SEED_BASE + i, shapes) for i in range(VALIDATION_EDITS)]
    pipe.set_progress_bar_config(disable=True)
    results: dict[str, dict] = {}
    for scale in EDIT_GUIDANCE_CANDIDATES:
        outputs = []
        for start in range(0, len(edits), 16):
            chunk = edits[start : start + 16]
            outputs += pipe(
                [e.instruction for e in chunk],
                reference_images=[[e.reference.image] for e in chunk],
                seed=VALIDATION_SEED_BASE + start,
                edit_guidance_scale=scale,
            ).images
        checks = [
            check_edit(e.reference.image, out, e.mask, e.color, e.object.shape, checker)
            for e, out in zip(edits, outputs, strict=True)
        ]
        scores = score_edits(checks)
        results[f"{scale:g}"] = {
            "accuracy": round(scores.accuracy, 4),
            "outside_changed": round(scores.outside_changed, 4),
        }
        print(f"validation edits, text guidance {scale:g}: {results[f'{scale:g}']}")
    best = max(EDIT_GUIDANCE_CANDIDATES, key=lambda s: results[f"{s:g}"]["accuracy"])
    return best, results


def choose_defaults(out: Path, pipe: MingImagePipeline) -> None:
    """Choose the text guidance of generation and of editing on the validation prompts, unless ``out``'s
    ``training_summary.json`` already holds them, and save them as the pipeline's default options."""
    path = out / "training_summary.json"
    summary = json.loads(path.read_text())
    if "guidance_scale" in summary and "edit_guidance_scale" in summary:
        return
    if "guidance_scale" not in summary:
        summary["guidance_scale"], summary["validation"] = choose_guidance(pipe, SHAPES)
    if "edit_guidance_scale" not in summary:
        summary["edit_guidance_scale"], summary["edit_validation"] = choose_edit_guidance(pipe, SHAPES)
    pipe.set_default_options(
        guidance_scale=summary["guidance_scale"], edit_guidance_scale=summary["edit_guidance_scale"]
    )
    pipe.save_pretrained(out, safe_serialization=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"default text guidance {summary['guidance_scale']:g}, editing {summary['edit_guidance_scale']:g}")


def train_and_save(
    out: Path, steps: int, max_minutes: float, learning_rate: float, logit_mean: float
) -> MingImagePipeline | None:
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
        settings = recipe(
            run_dir, target, steps, SHAPES, samples=target == steps, learning_rate=learning_rate, logit_mean=logit_mean
        )
        log = train_image_generator(pipe, samples, settings)
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
            f"{EDIT_SAMPLES} edits), AdamW {learning_rate:g} (queries and connector {CONDITIONER_LR:g})"
            f"{', cosine decay to 0' if COSINE_DECAY else ''}"
            f"{f', EMA of the weights (decay {EMA_DECAY:g})' if EMA_DECAY is not None else ''}, "
            f"DiT output: {'the clean image' if PREDICTION == 'sample' else 'the velocity'}, LM "
            f"pretrained {LM_STEPS} steps on the training texts then frozen, flow times σ "
            f"{TIMESTEPS.replace('_', '-')}{f' (logit mean {logit_mean:g})' if logit_mean else ''}, one CPU thread; "
            f"flow-matching loss {first:.3f} over the first 50 steps → {last:.3f} over the last 50"
        ),
    }
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"done: loss {first:.3f} → {last:.3f}; saved to {out}")
    return pipe


def write_validation_table(out: Path, path: Path) -> None:
    """The guidance sweeps on the validation prompts (from ``out``'s ``training_summary.json``) as a benchmark table."""
    summary = json.loads((out / "training_summary.json").read_text())
    headers = {"two_object": "2-Obj.", "counting": "Count", "colors": "Colors", "position": "Posit.",
               "color_attr": "Color attr."}  # fmt: skip
    generation, editing = summary["validation"], summary["edit_validation"]
    rows = []
    for scale in sorted({*generation, *editing}, key=float):
        gen, edit = generation.get(scale), editing.get(scale)
        chosen = [what for what, key in (("generation", "guidance_scale"), ("editing", "edit_guidance_scale"))
                  if float(scale) == summary[key]]  # fmt: skip
        rows.append(
            {
                "text guidance": scale + (f" (chosen: {', '.join(chosen)})" if chosen else ""),
                **{h: f"{gen[c]:.2f}" if gen else "—" for c, h in headers.items()},
                "Overall": f"{gen['overall']:.2f}" if gen else "—",
                "Edit acc.": f"{edit['accuracy']:.2f}" if edit else "—",
                "Outside changed": f"{edit['outside_changed']:.3f}" if edit else "—",
            }
        )
    counts = {headers[c]: len(found) for c, found in data_split(SHAPES).validation.items() if found}
    write_results(
        path,
        title="Text guidance of the tiny shapes model, chosen on validation prompts",
        command="python packages/ming-imagegen/benchmarks/train_shapes.py",
        machine=describe_machine("one thread used", torch=torch.__version__),
        rows=rows,
        notes=(
            f"The trained checkpoint ({summary['steps']} steps) on the validation prompts per category {counts} (kept "
            "out of training and disjoint from the held-out test prompts of bench_geneval.py; single objects have "
            f"none): mini-GenEval of {VALIDATION_IMAGES} images per category (its prompts in turn; Overall is the mean "
            f"of these five categories) and {VALIDATION_EDITS} recolouring edits on scenes of these prompts (image "
            "guidance 2), 30 Euler steps. The best scale of each (a tie: the smaller) becomes the saved pipeline's "
            "default guidance_scale and edit_guidance_scale."
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where save_pretrained writes the pipeline")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--retrain", action="store_true", help="train (or resume DIR-run) even if DIR exists")
    parser.add_argument("--max-minutes", type=float, default=24.0, help="stop at a checkpoint before this")
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE, help="AdamW rate of the DiT")
    parser.add_argument("--logit-mean", type=float, default=LOGIT_MEAN, help="mean of the logit-normal law of σ")
    args = parser.parse_args()
    torch.set_num_threads(1)  # thousands of small ops: a second thread costs more than it gains on a shared 2-core box
    if args.retrain or not (args.out / "model_index.json").exists():
        pipe = train_and_save(args.out, args.steps, args.max_minutes, args.learning_rate, args.logit_mean)
        if pipe is None:
            return
    else:
        pipe = MingImagePipeline.from_pretrained(args.out)
        print(f"loaded {args.out} (--retrain to train again)")
    choose_defaults(args.out, pipe)
    if args.out == DEFAULT_OUT:
        write_validation_table(args.out, Path(__file__).resolve().parent / "results" / "guidance_validation.json")

    held_out = data_split(SHAPES).test
    checker = CheckerOptions.for_shapes(SHAPES)
    specs = [held_out[c][i] for c in GENEVAL_CATEGORIES for i in range(min(2, len(held_out[c])))]
    images = pipe([s.text for s in specs], seed=0).images
    for spec, image in zip(specs, images, strict=True):
        check = check_image(image, spec, checker)
        print(f"{spec.category:>13} | {spec.text:<40} | {'pass' if check.passed else '; '.join(check.failures)}")


if __name__ == "__main__":
    main()
