"""Text → TTS head → speech-tokenizer decoder → recogniser → WER, on the cached trained checkpoints.

Three packages meet here: ming-tts-head generates latents for digit sentences it never trained on, the tiny
ming-speech-tokenizer decodes them to audio, and a ming-contextasr ContextASRRecognizer trained in domain (digit
sequences in several espeak-ng voices) transcribes them; ming-contextasr's scorer gives the WER. The trained head
must say the right words far more often than the same head untrained, and the recogniser must transcribe the real
recordings and their tokenizer round trip — otherwise the measuring instrument, not the head, would be under test.
The head speaks with the sampler settings tune_espeak_generation.py chose on validation sentences (none of these).
The checkpoints are the ones trained on ming-speech-tokenizer's recipe v9 latents (its benchmark script's default),
and the recogniser hears plain recordings only. On these 16 sentences the cached head gets 35.7 % WER against 98.6 %
untrained (recordings 27.1 %, round trip 22.9 %). With recipe v1's latents and a recogniser trained half on v1 round
trips it got 62.9 % against 88.6 % (recordings 37.1 %), short of the 30 points, and this test was an expected failure.

The checkpoints take about an hour of CPU to make, longer than CI allows, so the test skips when they are absent
and names the commands that make them.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from ming_contextasr import ContextASRRecognizer, ContextASRRequest, score_corpus, score_utterance
from ming_speech_tokenizer import SpeechTokenizerModel
from ming_testdata import SAMPLE_RATE, speak
from ming_tts_head import GenerationOptions, TTSHeadModel, synthesize

CACHE = Path.home() / ".cache" / "ming"
TOKENIZER = CACHE / "speech-tokenizer" / "tiny-espeak-v9"
HEAD = CACHE / "tts-head" / "tiny-espeak-v9"
RECOGNISER = CACHE / "tts-head" / "digit-recogniser-plain"
REMAKE = (
    "python packages/ming-speech-tokenizer/benchmarks/train_tiny_espeak.py --recipe v9; "
    "python packages/ming-tts-head/benchmarks/train_espeak_tts.py; "
    "python packages/ming-tts-head/benchmarks/train_digit_recogniser.py; "
    "python packages/ming-tts-head/benchmarks/tune_espeak_generation.py"
)
VOICE, SPEED, PITCH = "en-us", 160, 50  # the voice the head was trained on (benchmarks/espeak_corpus.py)
SENTENCES = 16


def _missing() -> str | None:
    files = (TOKENIZER / "config.json", HEAD / "training.json", RECOGNISER / "training.json")
    absent = [str(path.parent) for path in files if not path.is_file()]
    if absent:
        return f"cached checkpoints absent ({', '.join(absent)}); make them with: {REMAKE}"
    if shutil.which("espeak-ng") is None:
        return "espeak-ng is not installed (the reference recordings come from it)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _word_count_r(references: list[str], hypotheses: list[str]) -> float:
    counts = torch.tensor([[len(t.split()) for t in references], [len(t.split()) for t in hypotheses]], dtype=float)
    return float(torch.corrcoef(counts)[0, 1]) if counts[1].std() > 0 else 0.0


@pytest.fixture(scope="module")
def pipeline() -> dict[str, dict[str, float]]:
    """Corpus WER and words-heard correlation of the recordings, their tokenizer round trip, the trained and the
    untrained heads' speech, and the recordings scored against the next sentence's words (right voice, wrong
    words)."""
    torch.set_num_threads(1)
    tokenizer = SpeechTokenizerModel.from_pretrained(TOKENIZER).eval()
    training = json.loads((HEAD / "training.json").read_text())
    if not math.isclose(training["latent_scaling_factor"], tokenizer.config.latent_scaling_factor, rel_tol=1e-6):
        pytest.skip(f"the cached head was trained on another tokenizer's latents; remake it with: {REMAKE}")
    trained = TTSHeadModel.from_pretrained(HEAD).eval()
    torch.manual_seed(0)  # the initialisation train_espeak_tts.py started from
    untrained = TTSHeadModel(trained.config).eval()
    recogniser = ContextASRRecognizer.from_pretrained(RECOGNISER)
    # The TTS corpus's held-out sentences, which the recogniser's training also left out.
    texts = json.loads((RECOGNISER / "training.json").read_text())["excluded_sentences"][:SENTENCES]
    vocabulary = training["text_vocabulary"]  # the head reads one id per digit word
    text_ids = [[vocabulary.index(word) for word in text.split()] for text in texts]

    recordings = [torch.from_numpy(speak(text, VOICE, speed=SPEED, pitch=PITCH)) for text in texts]
    # the sampler settings tune_espeak_generation.py chose on validation sentences, never these ones
    chosen = HEAD / "generation.json"
    tuned = json.loads(chosen.read_text()) if chosen.is_file() else {}
    options = GenerationOptions(
        min_patches=4, max_patches=40, **{k: tuned[k] for k in ("cfg_scale", "sway_coefficient") if k in tuned}
    )
    audios = {
        "recording": recordings,
        "round trip": [tokenizer.decode(tokenizer.encode(a, SAMPLE_RATE))[0, : a.numel()] for a in recordings],
        **{
            name: [tokenizer.decode(x)[0] for x in synthesize(model, text_ids, options)]
            for name, model in (("trained", trained), ("untrained", untrained))
        },
    }
    hypotheses = {
        name: [t.text for t in recogniser.transcribe([ContextASRRequest(audio=a) for a in speech], max_new_tokens=16)]
        for name, speech in audios.items()
    }
    references = dict.fromkeys(hypotheses, texts)
    hypotheses["wrong words"] = hypotheses["recording"]
    references["wrong words"] = texts[1:] + texts[:1]
    scores = {
        name: {
            "wer": score_corpus(score_utterance(r, h) for r, h in zip(references[name], said, strict=True)).wer,
            "words heard r": _word_count_r(references[name], said),
        }
        for name, said in hypotheses.items()
    }
    print(scores)
    return scores


def test_the_recogniser_transcribes_the_recordings_and_their_tokenizer_round_trip(pipeline):
    for name in ("recording", "round trip"):
        assert pipeline[name]["wer"] < 0.6
        assert pipeline["wrong words"]["wer"] - pipeline[name]["wer"] > 0.3
        assert pipeline[name]["words heard r"] > 0.8


def test_the_trained_head_says_the_words_far_more_often_than_the_untrained_head(pipeline):
    assert pipeline["untrained"]["wer"] - pipeline["trained"]["wer"] > 0.3
