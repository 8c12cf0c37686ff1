"""ming-tts-head: the DiTAR-style continuous speech generation head of Ming-Flash-Omni (paper §2.2).

- :class:`TTSHeadConfig` (``flash()``: Qwen2.5-0.5B backbone, patch 4, history 32, DiT and aggregator 8 × 1024 / 16;
  ``tiny()``) and :class:`TTSHeadModel`: backbone over ``[text ids, separator, patch embeddings]``,
  :class:`PatchAggregator`, :class:`FlowHead` (a DiT conditioned by prefix tokens), stop head; ``forward`` is the
  teacher-forced loss; ``save_pretrained`` / ``from_pretrained(local_dir)``.
- Sampling: :func:`flow_timesteps` (EPSS, uniform, sway), :func:`euler_sample`, classifier-free guidance in one
  batched forward (:meth:`FlowHead.guided_velocity`).
- Generation: :func:`stream_speech` (patch by patch, optional audio decoder: a callable or a
  :class:`StreamingAudioDecoder`, reset first and flushed at the end) and :func:`synthesize` (a batch of
  texts), driven by :class:`GenerationOptions` and :class:`SpeechRequest`.
- Training: :func:`train_tts_head` with a :class:`TrainingRecipe` (progress bar, checkpoints, exact resume).
- :data:`ORIGINAL_TALKER_NAMES`: the backbone's and stop head's key names in the original talker checkpoint.

Latents follow ming-speech-tokenizer's contract, ``(batch, frames, 64)`` at 50 frames/s, without depending on it.
"""

from .aggregator import PatchAggregator
from .configuration import TTSHeadConfig
from .flow_head import FlowHead, timestep_embedding
from .modeling import TTSHeadModel, TTSHeadOutput, history_windows
from .options import GenerationOptions, SpeechRequest
from .original_layout import ORIGINAL_TALKER_NAMES
from .sampler import euler_sample
from .schedule import EPSS_TIMESTEPS, flow_timesteps, sway
from .streaming import SpeechChunk, StreamingAudioDecoder, stream_speech, synthesize
from .training import SpeechExample, TrainingLog, TrainingRecipe, collate_examples, train_tts_head
from .transformer import BidirectionalTransformer

__all__ = [
    "EPSS_TIMESTEPS",
    "ORIGINAL_TALKER_NAMES",
    "BidirectionalTransformer",
    "FlowHead",
    "GenerationOptions",
    "PatchAggregator",
    "SpeechChunk",
    "SpeechExample",
    "SpeechRequest",
    "StreamingAudioDecoder",
    "TTSHeadConfig",
    "TTSHeadModel",
    "TTSHeadOutput",
    "TrainingLog",
    "TrainingRecipe",
    "collate_examples",
    "euler_sample",
    "flow_timesteps",
    "history_windows",
    "stream_speech",
    "sway",
    "synthesize",
    "timestep_embedding",
    "train_tts_head",
]
