"""ming-genseg: referring segmentation as a generative colouring edit (Ming-Flash-Omni, paper §2.3).

Instead of predicting a mask for "segment the banana", an editor is asked to "color the banana purple" and the mask
is read from where the purple appeared.

- Prompts: :class:`SegmentationRequest` → :class:`EditInstruction` (template + a colour that contrasts with the
  image, :func:`choose_edit_color`).
- Extraction: :func:`extract_mask` (reference, edit, colour) → boolean mask, cleaned by :func:`clean_mask`.
- :func:`segment` drives any :class:`EditingPipeline` (the interface of ming-imagegen's editing pipeline).
- Training pairs: :func:`synthesize_pair` turns (image, mask, expression) into editing data.
- Metrics: cIoU, gIoU and P@0.5/0.7/0.9 (:func:`score_masks`, :class:`SegmentationMetrics`).
- Baseline: :func:`color_threshold_segment` keeps the pixels of the expression's colour word.
"""

from importlib.metadata import version

from .baseline import ColorThresholdOptions, color_threshold_segment
from .colors import (
    CONFLICT_DISTANCE,
    EDIT_COLORS,
    NAMED_COLORS,
    RGB,
    ColorName,
    ColorSpec,
    EditColorName,
    choose_edit_color,
    color_words,
)
from .extraction import MaskOptions, clean_mask, extract_mask
from .metrics import PRECISION_THRESHOLDS, SegmentationMetrics, SegmentationScores, mask_iou, score_masks
from .pipeline import EditingPipeline, Segmentation, segment
from .prompts import (
    DEFAULT_TEMPLATE,
    EDIT_TEMPLATES,
    EditInstruction,
    EditOptions,
    SegmentationOptions,
    SegmentationRequest,
    Template,
    describe_object,
    edit_prompt,
)
from .synthesis import EditingPair, PairOptions, recolor, synthesize_pair

__all__ = [
    "CONFLICT_DISTANCE",
    "DEFAULT_TEMPLATE",
    "EDIT_COLORS",
    "EDIT_TEMPLATES",
    "NAMED_COLORS",
    "PRECISION_THRESHOLDS",
    "RGB",
    "ColorName",
    "ColorSpec",
    "ColorThresholdOptions",
    "EditColorName",
    "EditInstruction",
    "EditOptions",
    "EditingPair",
    "EditingPipeline",
    "MaskOptions",
    "PairOptions",
    "Segmentation",
    "SegmentationMetrics",
    "SegmentationOptions",
    "SegmentationRequest",
    "SegmentationScores",
    "Template",
    "choose_edit_color",
    "clean_mask",
    "color_threshold_segment",
    "color_words",
    "describe_object",
    "edit_prompt",
    "extract_mask",
    "mask_iou",
    "recolor",
    "score_masks",
    "segment",
    "synthesize_pair",
]

__version__ = version("ming-genseg")
"""The installed distribution's version."""
