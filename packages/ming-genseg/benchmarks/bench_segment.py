"""Referring segmentation by editing with the tiny ming-imagegen editor: quality on held-out scenes and segment()
end-to-end time (paper §2.3; issue 10's "real small run").

Run: python packages/ming-genseg/benchmarks/bench_segment.py [--checkpoint DIR] [--samples 120]
Needs the tiny shapes pipeline that ``packages/ming-imagegen/benchmarks/train_shapes.py`` trains (about 10 minutes) and
caches at ``DIR`` (default ``~/.cache/ming/imagegen/shapes-tiny``), and its untrained initialisation ``DIR-untrained``.
That editor learnt recolouring edits ("color the red circle on the left green") on scenes of training prompts; here
every sample is an object of a new scene (seeds never used in training) named the RefCOCO way, always with its colour
("the red circle", "the red circle on the left" when a look-alike shares the scene): half of the scenes are of
held-out prompts (:func:`ming_testdata.shape_world.split_prompts`), half hold only objects of one colour ("a red circle
and a red square", "two red circles"), where the colour word alone cannot single the object out. Systems, on
the same samples:

- :func:`~ming_genseg.segment` with the trained editor (edit colour chosen among the palette it was trained on);
- the same with the untrained editor;
- :func:`~ming_genseg.color_threshold_segment`, the colour-word heuristic;
- a perfect editor (paints exactly the object, :func:`~ming_genseg.recolor`): the ceiling of mask extraction.

Scores: cIoU, gIoU, P@0.5/0.7/0.9 (:func:`~ming_genseg.score_masks`), and milliseconds per image of the whole call
(the editor's 30 Euler steps with 3 guidance branches in one batch, colour choice, mask extraction), one CPU thread.
Prints a table and writes ``results/segment.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ming_genseg import (
    NAMED_COLORS,
    SegmentationOptions,
    color_threshold_segment,
    color_words,
    recolor,
    score_masks,
    segment,
)
from ming_imagegen import MingImagePipeline
from ming_testdata.results import describe_machine, write_results
from ming_testdata.shape_world import EditSample, ObjectGroup, PromptSpec, ShapesOptions, make_edit, split_prompts

HERE = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = Path.home() / ".cache" / "ming" / "imagegen" / "shapes-tiny"
TRAIN_COMMAND = "python packages/ming-imagegen/benchmarks/train_shapes.py"
SAMPLE_SEEDS = 2_000_000  # scenes of this benchmark; the editor's training scenes use seeds far below

Segmenter = Callable[[EditSample, int], np.ndarray]


class _PerfectEditor:
    """Paints the sample's object in the requested colour (the prompt's last word), exactly."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask

    def edit(self, image: Image.Image, prompt: str, *, seed: int | None = None) -> Image.Image:
        return recolor(image, self.mask, NAMED_COLORS[prompt.split()[-1]])


def editor_segmenter(pipeline: object, options: SegmentationOptions) -> Segmenter:
    """``segment()`` with ``pipeline`` as the editor."""
    return lambda sample, seed: segment(sample.reference.image, sample.expression, pipeline, options, seed=seed).mask


def perfect_segmenter(options: SegmentationOptions) -> Segmenter:
    """``segment()`` with an editor that paints exactly the sample's object."""
    return lambda sample, seed: (
        segment(sample.reference.image, sample.expression, _PerfectEditor(sample.mask), options, seed=seed).mask
    )


def baseline_segmenter(sample: EditSample, seed: int) -> np.ndarray:
    """The colour-word heuristic."""
    return color_threshold_segment(sample.reference.image, sample.expression)


def same_color_specs(shapes: ShapesOptions) -> list[PromptSpec]:
    """Scenes where every object has a look-alike in colour: "a red circle and a red square", "two red circles"."""
    pairs = [
        PromptSpec(groups=(ObjectGroup(shape=a, color=c), ObjectGroup(shape=b, color=c)))
        for c in shapes.colors
        for a in shapes.shapes
        for b in shapes.shapes
        if a < b
    ]
    return pairs + [
        PromptSpec(groups=(ObjectGroup(shape=a, color=c, count=2),)) for c in shapes.colors for a in shapes.shapes
    ]


def run(segmenter: Segmenter, samples: list[EditSample]) -> dict[str, str]:
    """Scores of ``segmenter`` on ``samples`` (all, and the odd ones: one-colour scenes) and its median ms per image."""
    masks, times = [], []
    for seed, sample in enumerate(samples):
        start = time.perf_counter()
        masks.append(segmenter(sample, seed))
        times.append((time.perf_counter() - start) * 1e3)
    scores = score_masks(masks, [s.mask for s in samples])
    one_color = score_masks(masks[1::2], [s.mask for s in samples[1::2]])
    cells = {"cIoU": f"{scores.ciou:.3f}", "gIoU": f"{scores.giou:.3f}"}
    cells |= {f"P@{t}": f"{p:.3f}" for t, p in scores.precision.items()}
    cells |= {"gIoU one-colour scenes": f"{one_color.giou:.3f}", "ms / image": f"{statistics.median(times):.1f}"}
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "segment.json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a tiny model: a second thread costs more than it gains on a shared 2-core machine
    if not (args.checkpoint / "model_index.json").exists():
        raise SystemExit(f"no editor at {args.checkpoint}; make it with: {TRAIN_COMMAND} --out {args.checkpoint}")

    shapes = ShapesOptions.model_validate_json((args.checkpoint / "shapes_options.json").read_text())
    held_out = [spec for found in split_prompts(shapes).held_out.values() for spec in found]
    sources = (held_out, same_color_specs(shapes))
    samples = [
        make_edit(sources[i % 2], SAMPLE_SEEDS + i, shapes, "color {target} {color}", name_color=True)
        for i in range(args.samples)
    ]
    # Only colours the editor was trained to paint; segment() still leaves out the ones in the image or expression.
    options = SegmentationOptions(palette=shapes.colors)
    untrained_path = args.checkpoint.with_name(args.checkpoint.name + "-untrained")
    editors = {name: MingImagePipeline.from_pretrained(path) for name, path in
               (("trained", args.checkpoint), ("untrained", untrained_path))}  # fmt: skip
    for editor in editors.values():
        editor.set_progress_bar_config(disable=True)
    summary = json.loads((args.checkpoint / "training_summary.json").read_text())

    load = os.getloadavg()[0]
    systems: dict[str, Segmenter] = {
        f"segment() + trained tiny editor ({summary['steps']} steps)": editor_segmenter(editors["trained"], options),
        "segment() + untrained tiny editor": editor_segmenter(editors["untrained"], options),
        "colour-word baseline": baseline_segmenter,
        "segment() + perfect editor (ceiling)": perfect_segmenter(options),
    }
    rows = []
    for name, segmenter in systems.items():
        rows.append({"system": name, **run(segmenter, samples)})
    ambiguous = sum(sum(o.color == color_words(s.expression)[0] for o in s.reference.objects) > 1 for s in samples)
    columns = list(rows[0])
    notes = (
        f"{len(samples)} objects of new scenes ({shapes.size}×{shapes.size} px, white background): half of held-out "
        "prompts, half holding only objects of one colour ('a red circle and a red square', 'two red circles'); each "
        f"named with its colour and, when a look-alike shares the scene, a side. In {ambiguous} samples another "
        "object has the same colour, so the colour word alone cannot be right. segment() picks the edit colour "
        f"among the editor's training colours {list(shapes.colors)} (absent from the image and the expression), "
        "asks 'color <expression> <colour>', and extracts the mask with default MaskOptions. Editors: the tiny "
        f"ming-imagegen pipeline ({summary['description']}) and the same initialisation untrained; the perfect "
        "editor paints exactly the object. P@τ: share of samples with IoU ≥ τ. ms / image: median wall time of the "
        "whole call (editor + colour choice + extraction; 30 Euler steps, three guidance branches in one batch), one "
        f"CPU thread; 1-minute load average at the start: {load:.1f}."
    )
    write_results(
        args.out,
        title="Segmentation as editing on rendered shapes: held-out scenes and segment() time",
        command=" ".join(["python packages/ming-genseg/benchmarks/bench_segment.py", *sys.argv[1:]]),
        machine=describe_machine("one thread used", torch=torch.__version__),
        columns=columns,
        rows=rows,
        notes=notes,
    )


if __name__ == "__main__":
    main()
