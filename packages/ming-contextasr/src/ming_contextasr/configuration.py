"""Configuration of the audio encoder + projector (paper §2.2: Ming-Omni's Whisper audio encoder, kept unchanged).

The only place the architecture numbers live. ``flash()`` is Whisper-large-v3's encoder shape with a 15,000-frame
position table (about 300 s; clips are not padded to 30 s) and a projector into Ling-flash-2.0's width 4096;
``tiny()`` runs on a laptop CPU in milliseconds.
"""

from __future__ import annotations

from transformers import PreTrainedConfig, WhisperConfig

__all__ = ["ContextASRAudioConfig"]


class ContextASRAudioConfig(PreTrainedConfig):
    """Log-mel front end, Whisper encoder and projector sizes.

    Attributes:
        sample_rate: input sample rate, Hz.
        n_fft: STFT size (and window length) of the log-mel front end.
        hop_length: STFT hop; one mel frame per ``hop_length`` samples (10 ms at 16 kHz).
        num_mel_bins: mel bands.
        d_model: encoder width.
        encoder_layers: encoder blocks.
        encoder_attention_heads: attention heads per block.
        encoder_ffn_dim: MLP width of a block.
        max_source_positions: encoder frames (after the stride-2 conv) one window can hold; longer audio is encoded
            in windows of ``2 × max_source_positions`` mel frames.
        llm_hidden_size: width of the language model the projector feeds.
        projector_kernel_size: kernel of the projector's Conv1d.
        projector_stride: stride of the projector's Conv1d (2: 50 → 25 embeddings per second).
        init_std: standard deviation of the random initialisation.
    """

    model_type = "ming_contextasr_audio"

    sample_rate: int = 16_000
    n_fft: int = 400
    hop_length: int = 160
    num_mel_bins: int = 128
    d_model: int = 1280
    encoder_layers: int = 32
    encoder_attention_heads: int = 20
    encoder_ffn_dim: int = 5120
    max_source_positions: int = 15_000
    llm_hidden_size: int = 4096
    projector_kernel_size: int = 3
    projector_stride: int = 2
    init_std: float = 0.02

    @classmethod
    def flash(cls) -> ContextASRAudioConfig:
        """Ming-Flash-Omni: Whisper-large-v3 encoder (128 mels, 1280 wide, 32 layers, 20 heads), 15,000 positions,
        projector 1280 → 4096."""
        return cls()

    @classmethod
    def tiny(cls) -> ContextASRAudioConfig:
        """A 145k-parameter preset for tests and examples (10 s windows)."""
        return cls(
            num_mel_bins=32,
            d_model=64,
            encoder_layers=2,
            encoder_attention_heads=4,
            encoder_ffn_dim=128,
            max_source_positions=500,
            llm_hidden_size=96,
        )

    def whisper_config(self) -> WhisperConfig:
        """The transformers ``WhisperConfig`` whose encoder this model uses (decoder fields unused)."""
        return WhisperConfig(
            num_mel_bins=self.num_mel_bins,
            d_model=self.d_model,
            encoder_layers=self.encoder_layers,
            encoder_attention_heads=self.encoder_attention_heads,
            encoder_ffn_dim=self.encoder_ffn_dim,
            max_source_positions=self.max_source_positions,
            init_std=self.init_std,
        )
