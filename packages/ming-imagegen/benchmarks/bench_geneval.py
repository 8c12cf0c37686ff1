"""Mini-GenEval and editing score of the tiny shapes model on held-out prompts, trained vs untrained (paper §2.3,
Table 2).

Run: python packages/ming-imagegen/benchmarks/bench_geneval.py [--checkpoint DIR] [--split test | validation]
Loads the pipeline that ``benchmarks/train_shapes.py`` saved at ``DIR`` (default ``~/.cache/ming/imagegen/shapes-tiny``;
trained first, about 20 minutes, when it is missing) and its untrained initialisation (``DIR-untrained``). For every
held-out prompt of the six GenEval categories (prompts never shown in training, :func:`~ming_testdata.shape_world.
split_prompts`) it draws ``--images-per-category`` images (the category's prompts in turn, each image its own seed)
and scores them with the rule-based checker (:mod:`ming_testdata.geneval`), at the checkpoint's default text guidance
(``train_shapes.py`` chose it on the validation prompts) and at each of ``--guidance-scales``. ``--split validation``
scores the validation prompts instead (also kept out of training, disjoint from the test prompts; no single-object
prompt) and writes ``results/geneval_validation.json``. The rendered ground truth of the same prompts is scored too
(the checker's ceiling). Editing: ``--edits`` recolouring edits ("make the red circle green") on scenes of the same
prompts, scored by the checker on the edited object and by the pixels changed elsewhere, against returning the
reference unchanged. Prints a table and writes ``results/geneval.json``; a grid of samples goes next to the checkpoint
(``DIR-eval/``, outside git).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from train_shapes import data_split  # this folder's training script: the train / validation / test prompts

from ming_imagegen import MingImagePipeline
from ming_testdata.geneval import CheckerOptions, GenEvalScores, check_edit, score_edits, score_images
from ming_testdata.results import describe_machine, write_results
from ming_testdata.shape_world import GENEVAL_CATEGORIES, EditSample, ShapesOptions, make_edit, render_scene

HERE = Path(__file__).resolve().parent
TRAIN_SCRIPT = HERE / "train_shapes.py"
DEFAULT_CHECKPOINT = Path.home() / ".cache" / "ming" / "imagegen" / "shapes-tiny"
EDIT_SEEDS = {"test": 1_000_000, "validation": 2_000_000}  # edit scenes draw seeds from here; training's stay below
HEADERS = {"single_object": "1-Obj.", "two_object": "2-Obj.", "counting": "Count", "colors": "Colors",
           "position": "Posit.", "color_attr": "Color attr."}  # fmt: skip


def load(checkpoint: Path) -> tuple[MingImagePipeline, MingImagePipeline, ShapesOptions, dict]:
    """The trained and untrained pipelines, the shape world they were trained on and the training summary."""
    if not (checkpoint / "model_index.json").exists():
        print(f"no checkpoint at {checkpoint}: training it (about 19 minutes)")
        subprocess.run([sys.executable, str(TRAIN_SCRIPT), "--out", str(checkpoint)], check=True)
    trained = MingImagePipeline.from_pretrained(checkpoint)
    untrained = MingImagePipeline.from_pretrained(checkpoint.with_name(checkpoint.name + "-untrained"))
    options = ShapesOptions.model_validate_json((checkpoint / "shapes_options.json").read_text())
    summary = json.loads((checkpoint / "training_summary.json").read_text())
    return trained, untrained, options, summary


def generate(
    pipe: MingImagePipeline, prompts: list[str], steps: int, batch: int, guidance: float | None = None
) -> list[Image.Image]:
    """One image per prompt (repeat a prompt for several); image ``i`` has seed ``i`` whatever the model.
    ``guidance``: the text guidance scale (None: the pipeline's default)."""
    images: list[Image.Image] = []
    scale = {} if guidance is None else {"guidance_scale": guidance}
    for start in range(0, len(prompts), batch):
        # Row r of a call draws its noise from seed + r.
        images += pipe(prompts[start : start + batch], seed=start, num_inference_steps=steps, **scale).images
    return images


def edit(
    pipe: MingImagePipeline, edits: list[EditSample], steps: int, batch: int, guidance: float | None = None
) -> list[Image.Image]:
    """The pipeline's edit of each reference scene, as instructed (``guidance``: the text scale ``s_txt``, None: the
    pipeline's default)."""
    out: list[Image.Image] = []
    scale = {} if guidance is None else {"edit_guidance_scale": guidance}
    for start in range(0, len(edits), batch):
        chunk = edits[start : start + batch]
        result = pipe(
            [e.instruction for e in chunk],
            reference_images=[[e.reference.image] for e in chunk],
            seed=start,
            num_inference_steps=steps,
            output_type="pil",
            **scale,
        )
        out += result.images
    return out


def grid(rows: list[list[Image.Image]], scale: int = 3) -> Image.Image:
    """Images laid out row by row, each enlarged ``scale`` times (nearest neighbour)."""
    side = rows[0][0].width * scale
    canvas = Image.new("RGB", (side * max(len(r) for r in rows), side * len(rows)), "black")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            canvas.paste(image.resize((side, side), Image.Resampling.NEAREST), (c * side, r * side))
    return canvas


def condition_spread(pipe: MingImagePipeline, prompts: list[str]) -> float:
    """How far apart the condition tokens of different prompts are: the mean distance of a prompt's token from the
    prompts' mean token (same position), over the mean token norm (1: the tokens are unit vectors). Near 0, every
    prompt conditions the DiT alike and the images cannot follow the prompt."""
    with torch.no_grad():
        tokens = pipe.encode_condition(sorted(set(prompts))).tokens
    return ((tokens - tokens.mean(0)).norm(dim=-1).mean() / tokens.norm(dim=-1).mean()).item()


def fmt(value: float | None, digits: int = 2) -> str:
    """A score for the table; "—" where it does not apply."""
    return "—" if value is None else f"{value:.{digits}f}"


def row(
    system: str,
    scores: GenEvalScores | None,
    edits: dict[str, float] | None,
    seconds: float | None,
    spread: float | None = None,
) -> dict:
    """One table row: per-category GenEval scores, overall, editing scores, condition spread, time per image."""
    cells = {"system": system}
    for category in GENEVAL_CATEGORIES:
        cells[HEADERS[category]] = fmt(scores.categories.get(category) if scores else None)
    cells["Overall"] = fmt(scores.overall if scores else None)
    cells["Edit acc."] = fmt(edits["accuracy"] if edits else None)
    cells["Edit IoU"] = fmt(edits["mean_iou"] if edits else None)
    cells["Outside changed"] = fmt(edits["outside_changed"] if edits else None, 3)
    cells["Cond. spread"] = fmt(spread, 3)
    cells["s / image"] = fmt(seconds, 3)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--images-per-category", type=int, default=16)
    parser.add_argument("--edits", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="Euler steps (the pipeline's default)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--guidance-scales",
        type=float,
        nargs="*",
        default=[],
        help="extra rows of the trained model at these text guidance scales (generation and editing)",
    )
    parser.add_argument("--split", choices=("test", "validation"), default="test", help="which prompts to score")
    parser.add_argument("--out", type=Path, help="default: results/geneval.json (test), geneval_validation.json")
    args = parser.parse_args()
    out = args.out or HERE / "results" / ("geneval.json" if args.split == "test" else "geneval_validation.json")
    torch.set_num_threads(1)  # a tiny model: a second thread costs more than it gains on a shared 2-core machine

    trained, untrained, shapes, summary = load(args.checkpoint)
    checker = CheckerOptions.for_shapes(shapes)
    split = data_split(shapes)
    held_out = split.test if args.split == "test" else split.validation
    categories = [c for c in GENEVAL_CATEGORIES if held_out[c]]
    per_category = args.images_per_category
    per_image_specs = [held_out[c][i % len(held_out[c])] for c in categories for i in range(per_category)]
    prompts = [spec.text for spec in per_image_specs]
    truth = [render_scene(spec, i, shapes).image for i, spec in enumerate(per_image_specs)]
    every_held_out = [spec for found in held_out.values() for spec in found]
    edits = [make_edit(every_held_out, EDIT_SEEDS[args.split] + i, shapes) for i in range(args.edits)]

    def edit_scores(outputs: list[Image.Image]) -> dict[str, float]:
        checks = [
            check_edit(e.reference.image, out, e.mask, e.color, e.object.shape, checker)
            for e, out in zip(edits, outputs, strict=True)
        ]
        return vars(score_edits(checks))

    load_avg = os.getloadavg()[0]
    rows = [row("rendered ground truth", score_images(truth, per_image_specs, checker),
                edit_scores([e.target for e in edits]), None)]  # fmt: skip
    samples: dict[str, tuple[list[Image.Image], list[Image.Image]]] = {}
    defaults = trained.default_options  # both models at the trained checkpoint's default guidance
    for name, pipe in (("trained", trained), ("untrained", untrained)):
        pipe.set_progress_bar_config(disable=True)
        start = time.perf_counter()
        images = generate(pipe, prompts, args.steps, args.batch, defaults.guidance_scale)
        seconds = (time.perf_counter() - start) / len(images)
        edited = edit(pipe, edits, args.steps, args.batch, defaults.edit_text_scale)
        samples[name] = (images, edited)
        label = f"{name} tiny model" + (f" ({summary['steps']} steps)" if name == "trained" else "")
        label += f", text guidance {defaults.guidance_scale:g} / edit {defaults.edit_text_scale:g}"
        label += " (its defaults)" if name == "trained" else ""
        spread = condition_spread(pipe, prompts)
        rows.append(row(label, score_images(images, per_image_specs, checker), edit_scores(edited), seconds, spread))
    for scale in args.guidance_scales:
        images = generate(trained, prompts, args.steps, args.batch, scale)
        edited = edit(trained, edits, args.steps, args.batch, scale)
        label = f"trained tiny model, text guidance {scale:g}"
        rows.append(row(label, score_images(images, per_image_specs, checker), edit_scores(edited), None))
    rows.append(row("reference returned unchanged", None, edit_scores([e.reference.image for e in edits]), None))

    eval_dir = args.checkpoint.with_name(
        args.checkpoint.name + ("-eval" if args.split == "test" else "-eval-validation")
    )
    eval_dir.mkdir(parents=True, exist_ok=True)
    first = [c * per_category + i for c in range(len(categories)) for i in range(min(4, per_category))]
    grid([[truth[i] for i in first], *([samples[n][0][i] for i in first] for n in samples)]).save(
        eval_dir / "geneval_samples.png"
    )
    shown = edits[:24]
    grid([[e.reference.image for e in shown], *(samples[n][1][: len(shown)] for n in samples),
          [e.target for e in shown]]).save(eval_dir / "edit_samples.png")  # fmt: skip
    (eval_dir / "prompts.txt").write_text(
        "\n".join(prompts[i] for i in first) + "\n\n" + "\n".join(e.instruction for e in shown) + "\n"
    )

    columns = list(rows[0])
    counts = {HEADERS[c]: len(held_out[c]) for c in categories}
    what = "Held-out test prompts" if args.split == "test" else "Validation prompts (no single-object prompt)"
    notes = (
        f"{what} (never in training) per category {counts}, {per_category} images per category (its "
        "prompts in turn), "
        f"{args.steps} Euler steps, text guidance {defaults.guidance_scale:g} in generation and "
        f"{defaults.edit_text_scale:g} in editing (image guidance {defaults.image_guidance_scale:g}): the "
        "checkpoint's defaults, which train_shapes.py chose on the validation prompts; rows 'text guidance s': text "
        "scale s in both, same seeds. A prompt passes when the rule-based "
        "checker finds every object it asks for with the right shape, colour and count (exact for number words) and "
        "the relation between them; Overall is the mean of the six categories. Editing: "
        f"{args.edits} recolouring edits ('make the red circle green') on scenes of these prompts: Edit acc. = "
        "share where an object of the new colour and the object's shape covers it (IoU ≥ 0.5), Edit IoU = mean "
        "best IoU, Outside changed = share of pixels away from the object whose colour changed by more than 32. "
        "Cond. spread: the mean distance of a prompt's condition token from the prompts' mean token, over "
        "the mean token norm (0: every prompt conditions the DiT alike). "
        f"Training: {summary['description']}. The untrained model is the same initialisation before training. "
        f"Seconds per image: text-to-image generation with batched guidance, batch {args.batch}, one CPU thread; "
        f"1-minute load average at the start: {load_avg:.1f}. Sample grids: <checkpoint>-eval/ (outside git)."
    )
    write_results(
        out,
        title=(
            f"Mini-GenEval on rendered shapes ({'held-out' if args.split == 'test' else 'validation'} prompts) "
            "and recolouring edits"
        ),
        command=" ".join(["python packages/ming-imagegen/benchmarks/bench_geneval.py", *sys.argv[1:]]),
        machine=describe_machine("one thread used", torch=torch.__version__),
        columns=columns,
        rows=rows,
        notes=notes,
    )


if __name__ == "__main__":
    main()
