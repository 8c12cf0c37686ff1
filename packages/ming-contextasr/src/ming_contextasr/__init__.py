"""ming-contextasr: context-aware speech recognition pieces of Ming-Flash-Omni (paper §2.2, §3.2).

- :class:`ContextASRAudioModel` / :class:`ContextASRAudioConfig`: Whisper encoder + projector turning 16 kHz speech
  into L2-normalised LLM input embeddings, 25 per second, no 30 s padding; :func:`num_audio_tokens` says how many
  placeholder tokens a clip needs.
- :class:`ContextASRRequest`, :func:`render_prompt`, :func:`parse_transcription`: the context / hotword prompt and
  the ``{language}\\t{transcript}`` answer format.
- :class:`HotwordBiasingProcessor`, :class:`HotwordTrie`, :func:`hotword_token_ids`: Aho–Corasick hotword biasing
  for any transformers ``generate()``.
- :class:`ContextASRRecognizer`: the audio model feeding any transformers causal LM, trained on the rendered
  prompts and decoded with its ``generate()`` (optionally with hotword biasing); :func:`small_recognizer` builds a
  fresh one (tiny encoder + small Qwen2 decoder) for small experiments; :class:`AudioCTCHead` adds an auxiliary CTC
  loss on the audio embeddings, which a recogniser trained from scratch needs to read its audio.
- :func:`build_context_samples`: training samples with true entities mixed with distractors.
- :func:`score_utterance`, :func:`score_corpus`, :func:`normalize_text`: ContextASR-Bench WER, NE-WER and NE-FNR.
- :data:`ORIGINAL_AUDIO_ENCODER_NAMES`, :data:`ORIGINAL_AUDIO_PROJECTOR_NAMES`: the audio side's key names in the
  original Ming-Omni checkpoints.
"""

from .biasing import HotwordBiasingProcessor, HotwordTrie, hotword_token_ids
from .configuration import ContextASRAudioConfig
from .ctc import AudioCTCHead
from .data import ContextSample, ContextSampleOptions, TaggedUtterance, build_context_samples
from .metrics import (
    CorpusScore,
    UtteranceScore,
    match_entities,
    match_entities_fuzzy,
    score_corpus,
    score_utterance,
)
from .modeling import AudioEncoderOutput, ContextASRAudioModel, num_audio_tokens
from .normalize import normalize_text
from .original_layout import ORIGINAL_AUDIO_ENCODER_NAMES, ORIGINAL_AUDIO_PROJECTOR_NAMES
from .prompt import (
    SAMPLE_RATE,
    ContextASRRequest,
    ContextTruncatedWarning,
    PromptFields,
    PromptOptions,
    RenderedPrompt,
    Transcription,
    format_transcription,
    parse_prompt,
    parse_transcription,
    render_prompt,
)
from .recognizer import ContextASRRecognizer, RecognizerOutput, small_recognizer

__all__ = [
    "ORIGINAL_AUDIO_ENCODER_NAMES",
    "ORIGINAL_AUDIO_PROJECTOR_NAMES",
    "SAMPLE_RATE",
    "AudioCTCHead",
    "AudioEncoderOutput",
    "ContextASRAudioConfig",
    "ContextASRAudioModel",
    "ContextASRRecognizer",
    "ContextASRRequest",
    "ContextSample",
    "ContextSampleOptions",
    "ContextTruncatedWarning",
    "CorpusScore",
    "HotwordBiasingProcessor",
    "HotwordTrie",
    "PromptFields",
    "PromptOptions",
    "RecognizerOutput",
    "RenderedPrompt",
    "TaggedUtterance",
    "Transcription",
    "UtteranceScore",
    "build_context_samples",
    "format_transcription",
    "hotword_token_ids",
    "match_entities",
    "match_entities_fuzzy",
    "normalize_text",
    "num_audio_tokens",
    "parse_prompt",
    "parse_transcription",
    "render_prompt",
    "score_corpus",
    "score_utterance",
    "small_recognizer",
]

__version__ = "0.1.0"
