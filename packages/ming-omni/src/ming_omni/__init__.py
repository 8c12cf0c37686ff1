"""ming-omni: Ming-Flash-Omni composed from the ming-* components (paper §2)."""

from .configuration import MingOmniConfig
from .inventory import ComponentParameters, format_inventory, parameter_inventory, preset_inventory
from .loading import check_omni_checkpoint, load_checkpoint, omni_checkpoint_keys, omni_checkpoint_shapes
from .messages import AudioContent, Content, ImageContent, Message, TextContent, VideoContent, validate_conversation
from .modeling import MingOmniForConditionalGeneration, VisionProjector
from .omni import MingOmni, OmniOptions, OmniOutput, Output
from .processor import MingOmniProcessor, OmniInputs, Response
from .tokens import SPECIAL_TOKENS, make_tokenizer
from .wav import read_wav, write_wav

__all__ = [
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
    "check_omni_checkpoint",
    "format_inventory",
    "load_checkpoint",
    "make_tokenizer",
    "omni_checkpoint_keys",
    "omni_checkpoint_shapes",
    "parameter_inventory",
    "preset_inventory",
    "read_wav",
    "validate_conversation",
    "write_wav",
]
