"""ming-omni: Ming-Flash-Omni composed from the ming-* components (paper §2, Figure 2).

- :class:`MingOmniConfig` (``flash()`` / ``tiny()``): the components' own configs.
- :class:`MingOmniProcessor`: the original chat format (think mode), placeholders counted by the components'
  helpers, ``modality_ids`` for the per-modality routers, padding or packing; messages are pydantic models
  (:class:`Message`, :class:`TextContent`, :class:`ImageContent`, :class:`VideoContent`, :class:`AudioContent`).
- :class:`MingOmniForConditionalGeneration`: Qwen2.5-VL vision tower + projector, Whisper audio encoder + projector,
  the BailingMoeV2 LLM (VideoRoPE), the talker and the speech tokenizer; transformers ``generate``.
- :class:`MingOmni`: one ``generate(messages, outputs=..., options)`` for text, speech (streamed if asked) and
  images, ContextASR requests, ``draw`` / ``edit`` / ``segment`` through ming-imagegen and ming-genseg.
- Loading: strict ``from_pretrained`` (bf16, ``device_map``), :func:`load_checkpoint` (peak memory near the
  checkpoint's size), :func:`check_omni_checkpoint`; checkpoints use the original Ming-Omni key names
  (:data:`ORIGINAL_NAMES`, :func:`to_original_name`, :func:`from_original_name`); :func:`preset_inventory` counts
  parameters on ``meta``.
- The ``ming-omni`` command (:mod:`ming_omni.cli`).
"""

from .configuration import MingOmniConfig
from .inventory import ComponentParameters, format_inventory, parameter_inventory, preset_inventory
from .loading import check_omni_checkpoint, load_checkpoint, omni_checkpoint_keys, omni_checkpoint_shapes
from .messages import AudioContent, Content, ImageContent, Message, TextContent, VideoContent, validate_conversation
from .modeling import MingOmniForConditionalGeneration, VisionProjector
from .omni import MingOmni, OmniOptions, OmniOutput, Output
from .original_layout import ORIGINAL_NAMES, from_original_name, to_original_name
from .processor import MingOmniProcessor, OmniInputs, Response
from .tokens import SPECIAL_TOKENS, byte_tokenizer, make_tokenizer, word_tokenizer
from .wav import read_wav, write_wav

__all__ = [
    "ORIGINAL_NAMES",
    "SPECIAL_TOKENS",
    "AudioContent",
    "ComponentParameters",
    "Content",
    "ImageContent",
    "Message",
    "MingOmni",
    "MingOmniConfig",
    "MingOmniForConditionalGeneration",
    "MingOmniProcessor",
    "OmniInputs",
    "OmniOptions",
    "OmniOutput",
    "Output",
    "Response",
    "TextContent",
    "VideoContent",
    "VisionProjector",
    "byte_tokenizer",
    "check_omni_checkpoint",
    "format_inventory",
    "from_original_name",
    "load_checkpoint",
    "make_tokenizer",
    "omni_checkpoint_keys",
    "omni_checkpoint_shapes",
    "parameter_inventory",
    "preset_inventory",
    "read_wav",
    "to_original_name",
    "validate_conversation",
    "word_tokenizer",
    "write_wav",
]
