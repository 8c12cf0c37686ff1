"""Audio encoder + projector: speech → LLM input embeddings (paper §2.2; Ming-Omni's Whisper encoder).

Log-mel features (torchaudio, Whisper's recipe) → transformers' ``WhisperEncoder`` blocks → Conv1d(k=3, s=2) → GELU
→ Linear → L2-normalise: 100 mel frames → 50 encoder frames → 25 embeddings per second.

Whisper's ``WhisperEncoder.forward`` insists on exactly ``2 × max_source_positions`` mel frames (30 s, zero-padded).
Here its modules (convs, position table, layers, final norm) are run directly instead: a batch is padded only to its
longest clip, conv outputs past a clip's end are zeroed (so the next conv sees the zero padding it would see
alone), the position table is sliced to the length used, and attention gets a key mask. Audio longer than one
window (``2 × max_source_positions`` mel frames) is cut into windows, each encoded as its own row; the encoder
outputs of a clip are joined before the projector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.transforms import MelSpectrogram
from transformers import PreTrainedModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder, sinusoids
from transformers.utils import ModelOutput

from .configuration import ContextASRAudioConfig

__all__ = ["AudioEncoderOutput", "ContextASRAudioModel", "num_audio_tokens"]


def num_audio_tokens(num_samples: int, config: ContextASRAudioConfig | None = None) -> int:
    """How many audio placeholder tokens a clip of ``num_samples`` samples (at ``config.sample_rate``) needs.

    ``num_samples // hop_length`` mel frames, halved (rounding up) by the encoder's stride-2 conv and again by the
    projector: 25 per second at 16 kHz with the default hop of 160.

    Raises:
        ValueError: the clip is shorter than ``n_fft`` samples (one STFT window).
    """
    config = config or ContextASRAudioConfig()
    if num_samples < config.n_fft:
        raise ValueError(f"num_samples = {num_samples} is shorter than one STFT window ({config.n_fft} samples)")
    encoder_frames = (num_samples // config.hop_length - 1) // 2 + 1
    padding = config.projector_kernel_size // 2
    return (encoder_frames + 2 * padding - config.projector_kernel_size) // config.projector_stride + 1


@dataclass
class AudioEncoderOutput(ModelOutput):
    """Output of :class:`ContextASRAudioModel`.

    Attributes:
        embeddings: ``(batch, max_tokens, llm_hidden_size)`` L2-normalised embeddings, zero past each clip's length.
        lengths: ``(batch,)`` number of embeddings of each clip (= :func:`num_audio_tokens`).
    """

    embeddings: torch.Tensor | None = None
    lengths: torch.Tensor | None = None

    def unpadded(self) -> list[torch.Tensor]:
        """One ``(tokens, llm_hidden_size)`` tensor per clip."""
        return [e[:n] for e, n in zip(self.embeddings, self.lengths.tolist(), strict=True)]


class ContextASRAudioModel(PreTrainedModel):
    """Whisper-style audio encoder + projector into the LLM (``save_pretrained`` / ``from_pretrained(local_dir)``).

    Call it with a list of mono 16 kHz waveforms (1-D tensors of any lengths, at least ``n_fft`` samples each).
    """

    config_class = ContextASRAudioConfig
    config: ContextASRAudioConfig
    base_model_prefix = "audio"
    main_input_name = "audio"
    _supports_sdpa = True

    def __init__(self, config: ContextASRAudioConfig) -> None:
        super().__init__(config)
        whisper = config.whisper_config()
        whisper._attn_implementation = config._attn_implementation or "sdpa"
        # Built on the CPU even under a `meta` device context: the filter bank is computed, not learned.
        with torch.device("cpu"):
            self.mel = MelSpectrogram(
                sample_rate=config.sample_rate,
                n_fft=config.n_fft,
                hop_length=config.hop_length,
                n_mels=config.num_mel_bins,
                power=2.0,
                norm="slaney",
                mel_scale="slaney",
            )
        self.encoder = WhisperEncoder(whisper)
        self.projector_conv = nn.Conv1d(
            config.d_model,
            config.llm_hidden_size,
            kernel_size=config.projector_kernel_size,
            stride=config.projector_stride,
            padding=config.projector_kernel_size // 2,
        )
        self.projector_linear = nn.Linear(config.llm_hidden_size, config.llm_hidden_size)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, WhisperEncoder):
            with torch.no_grad():
                module.embed_positions.weight.copy_(sinusoids(*module.embed_positions.weight.shape))

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Whisper's log-mel features of one clip, ``(num_mel_bins, samples // hop_length)``.

        Power mel spectrogram (Slaney filters, centred Hann STFT), last frame dropped, ``log10`` clamped at 1e-10,
        floored at the clip's maximum − 8, then ``(x + 4) / 4`` — as transformers' ``WhisperFeatureExtractor``,
        but over the clip's own length instead of a 30 s pad.
        """
        spectrum = self.mel(waveform.to(self.mel.spectrogram.window.dtype))[:, :-1]
        log_spec = spectrum.clamp(min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
        return (log_spec + 4.0) / 4.0

    def _encode_windows(self, windows: list[torch.Tensor]) -> list[torch.Tensor]:
        """Encode mel windows ``(mels, frames)`` as one batch padded to the longest; one ``(frames', d_model)``
        output per window."""
        encoder = self.encoder
        lengths = torch.tensor([w.shape[-1] for w in windows], device=windows[0].device)
        features = nn.utils.rnn.pad_sequence([w.T for w in windows], batch_first=True).transpose(1, 2)
        frames = torch.arange(features.shape[-1], device=features.device)
        hidden = F.gelu(encoder.conv1(features.to(encoder.conv1.weight.dtype)))
        hidden = hidden * (frames < lengths[:, None]).unsqueeze(1).to(hidden.dtype)
        hidden = F.gelu(encoder.conv2(hidden)).transpose(1, 2)
        out_lengths = (lengths - 1) // 2 + 1
        valid = torch.arange(hidden.shape[1], device=hidden.device) < out_lengths[:, None]
        hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
        hidden = F.dropout(hidden, p=encoder.dropout, training=self.training)
        mask = torch.zeros(valid.shape, dtype=hidden.dtype, device=hidden.device)
        mask = mask.masked_fill(~valid, torch.finfo(hidden.dtype).min)[:, None, None, :]
        for layer in encoder.layers:
            hidden = layer(hidden, mask)
        hidden = encoder.layer_norm(hidden)
        return [h[:n] for h, n in zip(hidden, out_lengths.tolist(), strict=True)]

    def forward(self, audio: Sequence[torch.Tensor]) -> AudioEncoderOutput:
        """Embed a batch of mono waveforms of any lengths.

        Raises:
            ValueError: a clip is not 1-D or is shorter than ``n_fft`` samples (naming the clip).
        """
        window = 2 * self.config.max_source_positions
        windows: list[torch.Tensor] = []
        owners: list[int] = []
        for i, waveform in enumerate(audio):
            if waveform.ndim != 1 or waveform.shape[0] < self.config.n_fft:
                raise ValueError(
                    f"audio[{i}] must be 1-D with at least {self.config.n_fft} samples, got {tuple(waveform.shape)}"
                )
            features = self.log_mel(waveform.to(self.device))
            for start in range(0, features.shape[-1], window):
                windows.append(features[:, start : start + window])
                owners.append(i)
        encoded = self._encode_windows(windows)
        clips = [torch.cat([e for e, o in zip(encoded, owners, strict=True) if o == i]) for i in range(len(audio))]
        lengths = torch.tensor([c.shape[0] for c in clips], device=self.device)
        hidden = nn.utils.rnn.pad_sequence(clips, batch_first=True)
        frames = torch.arange(hidden.shape[1], device=hidden.device)
        hidden = hidden * (frames < lengths[:, None]).unsqueeze(-1).to(hidden.dtype)
        projected = self.projector_conv(hidden.transpose(1, 2)).transpose(1, 2)
        embeddings = F.normalize(self.projector_linear(F.gelu(projected)), dim=-1)
        c = self.config
        token_lengths = (
            lengths + 2 * (c.projector_kernel_size // 2) - c.projector_kernel_size
        ) // c.projector_stride + 1
        valid = torch.arange(embeddings.shape[1], device=embeddings.device) < token_lengths[:, None]
        return AudioEncoderOutput(embeddings=embeddings * valid.unsqueeze(-1), lengths=token_lengths)
