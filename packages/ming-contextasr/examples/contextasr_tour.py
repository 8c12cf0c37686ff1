"""A tour of ming-contextasr: embed speech, build a context prompt, bias a decoder, score transcripts.

Runs in a few seconds on a CPU with random weights (tiny presets; no download):

    python packages/ming-contextasr/examples/contextasr_tour.py
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from ming_contextasr import (
    ContextASRAudioConfig,
    ContextASRAudioModel,
    ContextASRRequest,
    ContextSampleOptions,
    HotwordBiasingProcessor,
    TaggedUtterance,
    build_context_samples,
    num_audio_tokens,
    parse_transcription,
    render_prompt,
    score_corpus,
    score_utterance,
)


def main() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000 * 2, 12345)]

    # 1. Speech → LLM input embeddings, 25 per second, clips of any length in one batch (no 30 s padding).
    encoder = ContextASRAudioModel(ContextASRAudioConfig.tiny()).eval()
    with torch.no_grad():
        out = encoder([torch.from_numpy(c) for c in clips])
    for clip, n in zip(clips, out.lengths.tolist(), strict=True):
        print(
            f"{len(clip) / 16000:.2f} s of audio → {n} embeddings (num_audio_tokens says {num_audio_tokens(len(clip))})"
        )

    # 2. A training sample: the true entities mixed with distractors, rendered into the prompt.
    utterance = TaggedUtterance(
        audio=clips[0],
        transcript="Ask Zorbak about the Quillon launch.",
        entities=["Zorbak", "Quillon"],
        language="English",
    )
    sample = build_context_samples([utterance], ["Marvessa", "Tobrin", "Pandrel"], ContextSampleOptions(seed=1))[0]
    print("\nprompt:\n" + render_prompt(sample.request()).text)
    print("target:", repr(sample.target()))

    # 3. Hotword biasing inside any generate(): a tiny random Qwen2 decoder, hotword token ids 40 41 42.
    lm = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, pad_token_id=0, eos_token_id=1,
        )
    ).eval()  # fmt: skip
    prompt = torch.tensor([[2, 3, 4]])
    plain = lm.generate(prompt, max_new_tokens=6, do_sample=False)[0, 3:].tolist()
    biased = lm.generate(
        prompt, max_new_tokens=6, do_sample=False, logits_processor=[HotwordBiasingProcessor([[40, 41, 42]], bonus=50)]
    )[0, 3:].tolist()
    print(f"\ngreedy tokens without biasing: {plain}\ngreedy tokens with biasing:    {biased}")

    # 4. ContextASR-Bench metrics over a two-utterance corpus.
    request = ContextASRRequest(audio=clips[1], hotwords=["张三丰"], language="Chinese")
    print("\n" + render_prompt(request).text)
    scores = [
        score_utterance(
            "Ask Zorbak about the Quillon launch.", "ask zorback about the quillon launch", sample.true_entities
        ),
        score_utterance(
            "我在北京大学见到了张三丰。", parse_transcription("Chinese\t我在北京大学见了张三峰").text, ["张三丰"]
        ),
    ]
    corpus = score_corpus(scores)
    print(f"corpus WER {corpus.wer:.3f}  NE-WER {corpus.ne_wer:.3f}  NE-FNR {corpus.ne_fnr:.3f}")


if __name__ == "__main__":
    main()
