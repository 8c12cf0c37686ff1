"""Segmentation as editing on rendered scenes: build editing pairs, read the masks back, score them against the
colour-word baseline.

Runs in a couple of seconds on a CPU, with no model (ming-imagegen's editor is not there yet, so the edited images
are the synthesized training targets, i.e. what a perfectly trained editor would paint):

    python packages/ming-genseg/examples/segmentation_as_editing.py
"""

from __future__ import annotations

import numpy as np

from ming_genseg import (
    SegmentationMetrics,
    color_threshold_segment,
    describe_object,
    extract_mask,
    recolor,
    synthesize_pair,
)
from ming_testdata import SceneOptions, make_scenes


def main() -> None:
    rng = np.random.default_rng(0)
    scenes = make_scenes(SceneOptions(n=60, seed=0, width=96, height=96, min_objects=2, max_objects=4))
    round_trip, baseline = SegmentationMetrics(), SegmentationMetrics()
    distractors = 0
    for i, scene in enumerate(scenes):
        target = scene.objects[int(rng.integers(len(scene.objects)))]
        expression = describe_object(target.shape, target.color, target.position)
        image = scene.image
        if i % 2:
            # ming-testdata gives each object its own colour; repaint another one in the target's colour so the
            # expression's shape and position matter, as with RefCOCO's same-category distractors.
            other = next(obj for obj in scene.objects if obj is not target)
            image = recolor(image, other.mask, target.rgb, 0.0)
            distractors += 1
        pair = synthesize_pair(image, target.mask, expression)  # segmentation sample → editing sample
        if i < 3:
            print(f"{expression!r:45} → prompt {pair.prompt!r}")
        round_trip.update(extract_mask(pair.reference, pair.edited, pair.color), target.mask)
        baseline.update(color_threshold_segment(image, expression), target.mask)

    print(f"\n{len(scenes)} scenes (96×96), {distractors} with a same-coloured distractor\n")
    print(f"{'method':38} {'cIoU':>6} {'gIoU':>6} {'P@0.5':>6} {'P@0.7':>6} {'P@0.9':>6}")
    for name, metrics in (("pair → extract_mask (perfect editor)", round_trip), ("colour-word baseline", baseline)):
        scores = metrics.compute()
        precision = " ".join(f"{scores.precision[t]:6.3f}" for t in (0.5, 0.7, 0.9))
        print(f"{name:38} {scores.ciou:6.3f} {scores.giou:6.3f} {precision}")


if __name__ == "__main__":
    main()
