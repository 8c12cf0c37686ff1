"""Mask extraction time per image at 512² and 1024² (numpy + scipy.ndimage, one CPU thread).

For each size, ming-testdata scenes of coloured shapes become editing pairs (:func:`synthesize_pair`); the timed
steps are the ones a segmentation call or a data builder runs per image: :func:`extract_mask` (per-pixel rule +
cleanup), :func:`clean_mask` alone on the raw mask, :func:`choose_edit_color`, :func:`synthesize_pair`, and the
colour-word baseline. The round trip must give the source mask back (the benchmark fails otherwise). Prints a table
and writes ``results/mask_extraction.json``.

    python packages/ming-genseg/benchmarks/bench_mask_extraction.py [--sizes 512 1024] [--repeats 7]
"""

from __future__ import annotations

import os

# One thread, as the results claim: BLAS reads these when numpy is first imported, so they must be set before it.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import statistics
from pathlib import Path

import numpy as np
import scipy

from ming_genseg import (
    MaskOptions,
    choose_edit_color,
    clean_mask,
    color_threshold_segment,
    extract_mask,
    synthesize_pair,
)
from ming_testdata import Scene, SceneOptions, make_scenes
from ming_testdata.results import describe_machine, write_results
from ming_testdata.timing import median_seconds

RAW = MaskOptions(median_size=1, min_component_fraction=0.0, max_hole_fraction=0.0)


def time_scene(scene: Scene, repeats: int) -> dict[str, float]:
    """Median times of each step on one scene's last-drawn (never occluded) object."""
    obj = scene.objects[-1]
    expression = f"the {obj.color} {obj.shape}"
    pair = synthesize_pair(scene.image, obj.mask, expression)
    if not np.array_equal(extract_mask(pair.reference, pair.edited, pair.color), obj.mask):
        raise SystemExit("the round trip lost pixels: the benchmark would measure a broken extraction")
    raw = extract_mask(pair.reference, pair.edited, pair.color, RAW)
    steps = {
        "extract_mask ms": lambda: extract_mask(pair.reference, pair.edited, pair.color),
        "of which clean_mask ms": lambda: clean_mask(raw),
        "choose_edit_color ms": lambda: choose_edit_color(scene.image),
        "synthesize_pair ms": lambda: synthesize_pair(scene.image, obj.mask, expression),
        "colour baseline ms": lambda: color_threshold_segment(scene.image, expression),
    }
    return {name: 1e3 * median_seconds(fn, repeats) for name, fn in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--scenes", type=int, default=3, help="scenes per size (times are medians over all)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "mask_extraction.json")
    args = parser.parse_args()

    load = os.getloadavg()[0]  # other jobs on a shared machine inflate the times; say how busy it was
    rows = []
    for size in args.sizes:
        scenes = make_scenes(SceneOptions(n=args.scenes, seed=0, width=size, height=size, max_objects=4))
        per_scene = [time_scene(scene, args.repeats) for scene in scenes]
        medians = {name: statistics.median(t[name] for t in per_scene) for name in per_scene[0]}
        rows.append({"image": f"{size}×{size}", **{name: f"{ms:.1f}" for name, ms in medians.items()}})

    columns = ["image"] + [c for c in rows[0] if c != "image"]
    write_results(
        args.out,
        title="Mask extraction time per image",
        command="nox -s bench-ming-genseg",
        machine=describe_machine("one thread used", numpy=np.__version__, scipy=scipy.__version__),
        columns=columns,
        rows=rows,
        notes=(
            f"ming-testdata scenes (up to 4 shapes), {args.scenes} per size, median of {args.repeats} runs each after "
            "a warm-up, then the median over scenes; every round trip (synthesize_pair → extract_mask) gave the "
            "source mask exactly. clean_mask is median seeding + component labelling + hole filling; the rest of "
            "extract_mask is the per-pixel rule. segment() adds the editor's time to choose_edit_color + extract_mask; "
            "end to end with the tiny ming-imagegen pipeline it is in results/segment.json (bench_segment.py). "
            f"1-minute load average when the run started: {load:.1f}."
        ),
    )


if __name__ == "__main__":
    main()
