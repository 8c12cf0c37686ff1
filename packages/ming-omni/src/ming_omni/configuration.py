"""Configuration of the composed Ming-Flash-Omni model (paper §2, Figure 2).

:class:`MingOmniConfig` holds the components' own configs and nothing of their architecture: the vision tower
(transformers' Qwen2.5-VL vision config), the audio encoder (ming-contextasr), the LLM (ming-moe), the talker
(ming-tts-head) and the speech tokenizer (ming-speech-tokenizer). Its own fields are the input conventions of the
processor (image pixel budget, video frame rate and frame range).
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig
from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig

from ming_contextasr import ContextASRAudioConfig
from ming_moe import BailingMoeV2Config
from ming_speech_tokenizer import SpeechTokenizerConfig
from ming_tts_head import TTSHeadConfig

__all__ = ["MingOmniConfig"]


def _vision_config(
    depth: int, hidden_size: int, num_heads: int, intermediate_size: int, full_attention: list[int], out: int
) -> Qwen2_5_VLVisionConfig:
    """A Qwen2.5-VL vision tower with Ming's patching: 14-px patches, temporal patch 2, 2×2 merge, 112-px windows."""
    return Qwen2_5_VLVisionConfig(
        depth=depth,
        hidden_size=hidden_size,
        num_heads=num_heads,
        intermediate_size=intermediate_size,
        hidden_act="silu",
        patch_size=14,
        temporal_patch_size=2,
        spatial_merge_size=2,
        window_size=112,
        fullatt_block_indexes=full_attention,
        out_hidden_size=out,
    )


@strict
class MingOmniConfig(PreTrainedConfig):
    r"""The composed model: one sub-config per component, plus the processor's input conventions.

    Attributes:
        llm_config: the BailingMoeV2 LLM (:class:`ming_moe.BailingMoeV2Config`).
        vision_config: transformers' ``Qwen2_5_VLVisionConfig``; its ``out_hidden_size`` feeds the vision projector
            ``Linear(out_hidden_size → llm hidden) → GELU → Linear → L2-normalise``.
        audio_config: Whisper encoder + projector (:class:`ming_contextasr.ContextASRAudioConfig`); its
            ``llm_hidden_size`` must equal the LLM's width.
        talker_config: the speech head (:class:`ming_tts_head.TTSHeadConfig`).
        speech_tokenizer_config: the latent ↔ waveform codec (:class:`ming_speech_tokenizer.SpeechTokenizerConfig`);
            its ``latent_dim`` must equal the talker's.
        image_min_pixels: smallest pixel count an image is resized to (Qwen2.5-VL's ``smart_resize``).
        image_max_pixels: largest pixel count an image is resized to.
        video_fps: frames per second sampled from a video (2 in the paper).
        video_min_frames: fewest frames sampled from a video (4).
        video_max_frames: most frames sampled from a video (128).
    """

    model_type = "ming_omni"
    sub_configs_defaults = {  # noqa: RUF012 (transformers reads this class attribute)
        "llm_config": BailingMoeV2Config,
        "vision_config": Qwen2_5_VLVisionConfig,
        "audio_config": ContextASRAudioConfig,
        "talker_config": TTSHeadConfig,
        "speech_tokenizer_config": SpeechTokenizerConfig,
    }

    llm_config: dict | PreTrainedConfig | None = None
    vision_config: dict | PreTrainedConfig | None = None
    audio_config: dict | PreTrainedConfig | None = None
    talker_config: dict | PreTrainedConfig | None = None
    speech_tokenizer_config: dict | PreTrainedConfig | None = None
    image_min_pixels: int = 56 * 56
    image_max_pixels: int = 28 * 28 * 1280
    video_fps: float = 2.0
    video_min_frames: int = 4
    video_max_frames: int = 128
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs) -> None:
        super().__post_init__(**kwargs)
        width = self.llm_config.hidden_size
        if self.audio_config.llm_hidden_size != width:
            raise ValueError(
                f"audio_config.llm_hidden_size ({self.audio_config.llm_hidden_size}) must equal the LLM's "
                f"hidden_size ({width})"
            )
        if self.talker_config.latent_dim != self.speech_tokenizer_config.latent_dim:
            raise ValueError(
                f"talker_config.latent_dim ({self.talker_config.latent_dim}) must equal speech_tokenizer_config."
                f"latent_dim ({self.speech_tokenizer_config.latent_dim})"
            )
        if not 0 < self.image_min_pixels <= self.image_max_pixels:
            raise ValueError(
                f"need 0 < image_min_pixels <= image_max_pixels, got {self.image_min_pixels}, {self.image_max_pixels}"
            )
        temporal = self.vision_config.temporal_patch_size
        if self.video_min_frames < temporal or self.video_min_frames > self.video_max_frames or self.video_fps <= 0:
            raise ValueError(
                f"need video_fps > 0 and {temporal} <= video_min_frames <= video_max_frames, got video_fps="
                f"{self.video_fps}, video_min_frames={self.video_min_frames}, video_max_frames={self.video_max_frames}"
            )

    def get_text_config(self, decoder=None, encoder=None) -> PreTrainedConfig:
        """The LLM's config: what transformers' generation (caches, special tokens) reads."""
        return self.llm_config

    @property
    def merge_size(self) -> int:
        """Side of the square of vision patches the merger folds into one LLM token (2)."""
        return self.vision_config.spatial_merge_size

    @classmethod
    def flash(cls, **overrides) -> MingOmniConfig:
        """Ming-Flash-Omni: Ling-flash-2.0 LLM, Qwen2.5-VL vision tower (depth 32, width 1280, 16 heads, MLP 3456,
        patch 14, temporal patch 2, 2×2 merge, 112-px windows, full attention in blocks 7/15/23/31, merger output
        8192), Whisper-large-v3 audio encoder, Qwen2.5-0.5B talker, the 16 kHz speech tokenizer."""
        values = {
            "llm_config": BailingMoeV2Config.flash(),
            "vision_config": _vision_config(
                depth=32,
                hidden_size=1280,
                num_heads=16,
                intermediate_size=3456,
                full_attention=[7, 15, 23, 31],
                out=8192,
            ),
            "audio_config": ContextASRAudioConfig.flash(),
            "talker_config": TTSHeadConfig.flash(),
            "speech_tokenizer_config": SpeechTokenizerConfig.flash(),
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def tiny(cls, vocab_size: int = 512, **overrides) -> MingOmniConfig:
        """Every component at its tiny preset (the talker shares the LLM's vocabulary size, so one small tokenizer
        serves both), a 2-block vision tower of width 32, and images of at most 8×8 LLM tokens."""
        llm = BailingMoeV2Config.tiny(vocab_size=vocab_size)
        audio = ContextASRAudioConfig.tiny()
        audio.llm_hidden_size = llm.hidden_size
        values = {
            "llm_config": llm,
            "vision_config": _vision_config(
                depth=2, hidden_size=32, num_heads=2, intermediate_size=64, full_attention=[1], out=64
            ),
            "audio_config": audio,
            "talker_config": TTSHeadConfig.tiny(vocab_size=vocab_size),
            "speech_tokenizer_config": SpeechTokenizerConfig.tiny(),
            "image_min_pixels": 28 * 28,
            "image_max_pixels": 28 * 28 * 64,
        }
        values.update(overrides)
        return cls(**values)
