"""ming-testdata: offline data makers for tests and small training runs of the ming packages (no downloads).

- Speech: :func:`make_speech` speaks template sentences full of made-up names (:func:`make_lexicon`) with espeak-ng,
  in English or Mandarin, at 16 kHz, with transcripts, entity spans and optional word timings; :func:`speak` says
  any text.
- Images: :func:`make_scenes` draws coloured shapes with exact labels and visible-pixel masks;
  :func:`make_text_images` renders strings with PIL's default font.
- Video: :func:`make_videos` makes clips of shapes moving at constant velocity with per-frame labels.

Every maker takes a pydantic options model and is deterministic per seed; ``python -m ming_testdata`` writes samples
and a JSON manifest to a directory.
"""

from importlib.metadata import version

from .espeak import SAMPLE_RATE, EspeakError, EspeakNotFoundError, default_cache_dir, speak
from .images import Scene, SceneObject, SceneOptions, make_scenes, position_name
from .lexicon import ENTITY_TYPES, EntityType, Language, Lexicon, make_lexicon
from .palette import BACKGROUND_COLORS, COLORS, OBJECT_COLORS, SHAPES, ColorName, ShapeName
from .sentences import EntitySpan, Sentence, make_sentence, make_sentences
from .speech import DEFAULT_VOICES, SpeechOptions, Utterance, WordTiming, make_speech
from .text_images import TextImage, TextImageOptions, make_text_images
from .video import VideoClip, VideoObject, VideoOptions, make_videos

__all__ = [
    "BACKGROUND_COLORS",
    "COLORS",
    "DEFAULT_VOICES",
    "ENTITY_TYPES",
    "OBJECT_COLORS",
    "SAMPLE_RATE",
    "SHAPES",
    "ColorName",
    "EntitySpan",
    "EntityType",
    "EspeakError",
    "EspeakNotFoundError",
    "Language",
    "Lexicon",
    "Scene",
    "SceneObject",
    "SceneOptions",
    "Sentence",
    "ShapeName",
    "SpeechOptions",
    "TextImage",
    "TextImageOptions",
    "Utterance",
    "VideoClip",
    "VideoObject",
    "VideoOptions",
    "WordTiming",
    "default_cache_dir",
    "make_lexicon",
    "make_scenes",
    "make_sentence",
    "make_sentences",
    "make_speech",
    "make_text_images",
    "make_videos",
    "position_name",
    "speak",
]

__version__ = version("ming-testdata")
"""The installed distribution's version."""
