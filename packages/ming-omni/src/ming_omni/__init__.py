"""ming-omni: Ming-Flash-Omni composed from the ming-* components (paper §2)."""

from .configuration import MingOmniConfig
from .messages import AudioContent, Content, ImageContent, Message, TextContent, VideoContent, validate_conversation
from .modeling import MingOmniForConditionalGeneration, VisionProjector
from .processor import MingOmniProcessor, OmniInputs, Response
from .tokens import SPECIAL_TOKENS, make_tokenizer

__all__ = [
    "SPECIAL_TOKENS",
    "AudioContent",
    "Content",
    "ImageContent",
    "Message",
    "MingOmniConfig",
    "MingOmniForConditionalGeneration",
    "MingOmniProcessor",
    "OmniInputs",
    "Response",
    "TextContent",
    "VideoContent",
    "VisionProjector",
    "make_tokenizer",
    "validate_conversation",
]
