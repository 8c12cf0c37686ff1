"""Audio encoder + projector: speech → LLM input embeddings (paper §2.2; Ming-Omni's Whisper encoder).

Log-mel features (torchaudio, Whisper's recipe) → transformers' ``WhisperEncoder`` blocks → Conv1d(k=3, s=2) → GELU
→ Linear → L2-normalise: 100 mel frames → 50 encoder frames → 25 embeddings per second.

Whisper's ``WhisperEncoder.forward`` insists on exactly ``2 × max_source_positions`` mel frames (30 s, zero-padded).
Here its modules (convs, position table, layers, final norm) are run directly instead: a batch is padded only to its
longest clip, conv outputs past a clip's end are zeroed (so the next conv sees the zero padding it would see
alone), the position table is sliced to the length used, and attention gets a key mask. Audio longer than one
window (``2 × max_source_positions`` mel frames) is cut into windows, each encoded as its own row; the encoder
outputs of a clip are joined before the projector.

The log-mel front end always runs in float32 (``torch.stft`` has no bfloat16 kernels, and a bfloat16 filter bank
would change the features); its window and filter bank are derived from the config, kept out of the state dict, and
the features are cast to the encoder's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.transforms import MelSpectrogram
from transformers import PreTrainedModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder
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
    return _projector_tokens(_encoder_frames(num_samples // config.hop_length), config)


def _encoder_frames(mel_frames: int | torch.Tensor) -> int | torch.Tensor:
    """Encoder frames after Whisper's stride-2 conv (kernel 3, padding 1); ints or tensors."""
    return (mel_frames - 1) // 2 + 1


def _projector_tokens(encoder_frames: int | torch.Tensor, config: ContextASRAudioConfig) -> int | torch.Tensor:
    """Embeddings after the projector's conv (``padding = kernel // 2``); ints or tensors. Windows join before the
    projector and hold an even number of mel frames, so a clip's encoder frames sum to ``_encoder_frames`` of its
    whole length."""
    kernel, stride = config.projector_kernel_size, config.projector_stride
    return (encoder_frames + 2 * (kernel // 2) - kernel) // stride + 1


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

    Call it with a list of mono waveforms at ``config.sample_rate`` (1-D float tensors of any lengths, at least
    ``n_fft`` samples each); works in float32 or bfloat16 (``model.to(torch.bfloat16)``).
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
        self.encoder = WhisperEncoder(whisper)
        self.projector_conv = nn.Conv1d(
            config.d_model,
            config.llm_hidden_size,
            kernel_size=config.projector_kernel_size,
            stride=config.projector_stride,
            padding=config.projector_kernel_size // 2,
        )
        self.projector_linear = nn.Linear(config.llm_hidden_size, config.llm_hidden_size)
        # One float32 front end per device, held in a plain dict so that it is neither a submodule (model.to(dtype)
        # would cast it) nor part of the state dict (it is computed from the config, not learned).
        self._mel_by_device: dict[torch.device, MelSpectrogram] = {}
        self.post_init()

    def _mel(self, device: torch.device) -> MelSpectrogram:
        mel = self._mel_by_device.get(device)
        if mel is None:
            c = self.config
            mel = MelSpectrogram(
                sample_rate=c.sample_rate,
                n_fft=c.n_fft,
                hop_length=c.hop_length,
                n_mels=c.num_mel_bins,
                power=2.0,
                norm="slaney",
                mel_scale="slaney",
            ).to(device)
            self._mel_by_device[device] = mel
        return mel

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Whisper's log-mel features of one clip, ``(num_mel_bins, samples // hop_length)``, float32.

        Power mel spectrogram (Slaney filters, centred Hann STFT) of the whole clip, last frame dropped, ``log10``
        clamped at 1e-10, then per window of ``2 × max_source_positions`` frames floored at the window's maximum − 8
        and mapped by ``(x + 4) / 4``. As Whisper floors each 30 s input on its own, a window's features do not
        depend on how loud other windows are (only the STFT frames at a window's edge see ``n_fft / 2`` samples
        across it). For a clip of one window this equals transformers' ``WhisperFeatureExtractor`` without its 30 s
        padding.
        """
        spectrum = self._mel(waveform.device)(waveform.float())[:, :-1]
        log_spec = spectrum.clamp(min=1e-10).log10()
        windows = log_spec.split(2 * self.config.max_source_positions, dim=-1)
        return torch.cat([(torch.maximum(w, w.max() - 8.0) + 4.0) / 4.0 for w in windows], dim=-1)

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
        out_lengths = _encoder_frames(lengths)
        valid = torch.arange(hidden.shape[1], device=hidden.device) < out_lengths[:, None]
        hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
        hidden = F.dropout(hidden, p=encoder.dropout, training=self.training)
        mask = None  # without padding, no mask: SDPA then keeps its fused kernels
        if not bool(valid.all()):
            mask = torch.zeros(valid.shape, dtype=hidden.dtype, device=hidden.device)
            mask = mask.masked_fill(~valid, torch.finfo(hidden.dtype).min)[:, None, None, :]
        for layer in encoder.layers:
            hidden = layer(hidden, mask)
        hidden = encoder.layer_norm(hidden)
        return [h[:n] for h, n in zip(hidden, out_lengths.tolist(), strict=True)]

    def forward(self, audio: Sequence[torch.Tensor]) -> AudioEncoderOutput:
        """Embed a batch of mono waveforms of any lengths.

        Raises:
            ValueError: the batch is empty, or a clip is not 1-D, not floating-point or shorter than ``n_fft``
                samples (naming the clip).
        """
        if len(audio) == 0:
            raise ValueError("audio is an empty batch: pass at least one clip")
        window = 2 * self.config.max_source_positions
        windows: list[torch.Tensor] = []
        owners: list[int] = []
        for i, waveform in enumerate(audio):
            if waveform.ndim != 1 or waveform.shape[0] < self.config.n_fft:
                raise ValueError(
                    f"audio[{i}] must be 1-D with at least {self.config.n_fft} samples, got {tuple(waveform.shape)}"
                )
            if not waveform.is_floating_point():
                raise ValueError(f"audio[{i}] must hold float samples in [-1, 1], got {waveform.dtype}")
            features = self.log_mel(waveform.to(self.device))
            for start in range(0, features.shape[-1], window):
                windows.append(features[:, start : start + window])
                owners.append(i)
        encoded = self._encode_windows(windows)
        clips = [torch.cat([e for e, o in zip(encoded, owners, strict=True) if o == i]) for i in range(len(audio))]
        lengths = torch.tensor([c.shape[0] for c in clips], device=self.device)
        hidden = nn.utils.rnn.pad_sequence(clips, batch_first=True)
        projected = self.projector_conv(hidden.transpose(1, 2)).transpose(1, 2)
        embeddings = F.normalize(self.projector_linear(F.gelu(projected)), dim=-1)
        token_lengths = _projector_tokens(lengths, self.config)
        valid = torch.arange(embeddings.shape[1], device=embeddings.device) < token_lengths[:, None]
        return AudioEncoderOutput(embeddings=embeddings * valid.unsqueeze(-1), lengths=token_lengths)
