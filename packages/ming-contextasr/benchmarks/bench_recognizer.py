"""The tiny trained recogniser with and without context: WER, NE-WER and NE-FNR on held-out speech.

One model (``train_recognizer.py``, cached in ``~/.cache/ming/contextasr/recogniser-tiny/``) and the same held-out
utterances (voices and names never seen in training, :mod:`recognizer_data`) under each condition:

- no context;
- the true names as the prompt's hotword list;
- the true names mixed with as many distractors (other unseen names from the test lexicon), shuffled;
- the no-context prompt with that names + distractors list as decoding-time hotword biasing;
- both: names + distractors in the prompt and as biasing.

Greedy decoding; ContextASR-Bench metrics summed over the corpus. "distractors output" is the share of listed
distractors that appear in the hypothesis. Two diagnostics of copying follow: teacher-forced scores of a name's
tokens after its first (with audio), and the decoder alone without audio, given the prompt and the answer up to a
name's first token (:func:`text_only_copying`). Prints a table and writes ``results/recognizer.json``.

    python packages/ming-contextasr/benchmarks/bench_recognizer.py [--n 240] [--bonus 1 2 3]

The checkpoint is trained first if it is missing (about 20 minutes; ``train_recognizer.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from recognizer_data import TEST_VOICES, TRAIN_VOICES, test_set
from tqdm import tqdm
from train_recognizer import DEFAULT_OUT

from ming_contextasr import (
    ContextASRRecognizer,
    ContextASRRequest,
    ContextSampleOptions,
    build_context_samples,
    format_transcription,
    match_entities,
    normalize_text,
    num_audio_tokens,
    render_prompt,
    score_corpus,
    score_utterance,
)
from ming_testdata.results import describe_machine, write_results

RESULTS = Path(__file__).parent / "results" / "recognizer.json"
COLUMNS = ["condition", "prompt hotwords", "biasing", "WER", "NE-WER", "NE-FNR", "distractors output"]


def evaluate(
    model: ContextASRRecognizer,
    utterances: list,
    prompt_lists: list[tuple[str, ...]],
    bias_lists: list[tuple[str, ...]] | None,
    distractors: list[tuple[str, ...]],
    bonus: float,
) -> dict[str, str]:
    """Corpus WER, NE-WER, NE-FNR and the share of distractors output, for one condition."""
    requests = [
        ContextASRRequest(audio=u.audio, hotwords=words, language=u.language)
        for u, words in zip(utterances, prompt_lists, strict=True)
    ]
    hypotheses = []
    for start in tqdm(range(0, len(requests), 16), desc="decode", leave=False):
        stop = start + 16
        bias = None if bias_lists is None else bias_lists[start:stop]
        hypotheses += [t.text for t in model.transcribe(requests[start:stop], bias_hotwords=bias, bonus=bonus)]
    corpus = score_corpus(
        [score_utterance(u.transcript, h, u.entities) for u, h in zip(utterances, hypotheses, strict=True)]
    )
    listed = sum(len(d) for d in distractors)
    output = sum(
        len(match_entities(normalize_text(h).split(), [normalize_text(w) for w in d]))
        for h, d in zip(hypotheses, distractors, strict=True)
    )
    return {
        "WER": f"{corpus.wer:.3f}",
        "NE-WER": f"{corpus.ne_wer:.3f}",
        "NE-FNR": f"{corpus.ne_fnr:.3f}",
        "distractors output": f"{output / listed:.3f}" if listed else "–",
    }


@torch.no_grad()
def name_piece_scores(model: ContextASRRecognizer, utterances: list, prompt_lists: list[tuple[str, ...]]) -> dict:
    """Teacher-forced: mean log-loss (nats) and argmax accuracy of the tokens inside a name after its first token,
    i.e. the part of a name that can be copied from the list once the audio has said which name comes."""
    tokenizer, losses, hits = model.tokenizer, [], []
    for utterance, words in zip(utterances, prompt_lists, strict=True):
        request = ContextASRRequest(audio=utterance.audio, hotwords=words, language=utterance.language)
        answer = format_transcription(utterance.language, utterance.transcript)
        logits = model([request], [answer]).logits[0]
        prompt = tokenizer(render_prompt(request, model.prompt_options).text + "\n", add_special_tokens=False)
        start = len(prompt["input_ids"]) + num_audio_tokens(len(request.audio), model.audio_model.config)
        ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ends = [len(tokenizer.decode(ids[: k + 1])) for k in range(len(ids))]
        spans = [(answer.index(e), answer.index(e) + len(e)) for e in utterance.entities]
        log_probs = torch.log_softmax(logits.float(), -1)
        for k in range(1, len(ids)):
            if any(a < ends[k - 1] and ends[k] <= b for a, b in spans):
                losses.append(-log_probs[start + k - 1, ids[k]].item())
                hits.append(int(log_probs[start + k - 1].argmax()) == ids[k])
    return {"name tokens after the first: nats": f"{np.mean(losses):.3f}", "argmax accuracy": f"{np.mean(hits):.3f}"}


@torch.no_grad()
def text_only_copying(model: ContextASRRecognizer, utterances: list, prompt_lists: list[tuple[str, ...]]) -> dict:
    """The decoder alone (no audio) on ``prompt + answer``: how well it copies a listed name once given its first
    token. Teacher-forced argmax accuracy of the name's later tokens, and the share of names that greedy decoding,
    started right after the name's first token, completes exactly."""
    tokenizer, language_model = model.tokenizer, model.language_model
    hits, completed = [], []
    for utterance, words in zip(utterances, prompt_lists, strict=True):
        request = ContextASRRequest(audio=utterance.audio, hotwords=words, language=utterance.language)
        prompt = tokenizer(render_prompt(request, model.prompt_options).text + "\n", add_special_tokens=False)
        prompt = prompt["input_ids"]
        answer = format_transcription(utterance.language, utterance.transcript)
        ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        predicted = language_model(input_ids=torch.tensor([prompt + ids])).logits[0].argmax(-1)
        ends = [len(tokenizer.decode(ids[: k + 1])) for k in range(len(ids))]
        starts = [0, *ends[:-1]]
        for entity in utterance.entities:
            a = answer.index(entity)
            inside = [k for k in range(len(ids)) if ends[k] > a and starts[k] < a + len(entity)]
            hits += [int(predicted[len(prompt) + k - 1]) == ids[k] for k in inside[1:]]
            context = torch.tensor([prompt + ids[: inside[0] + 1]])
            greedy = language_model.generate(
                context, max_new_tokens=len(inside) - 1, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
            completed.append(greedy[0, context.shape[1] :].tolist() == ids[inside[1] : inside[-1] + 1])
    return {
        "name tokens after the first: argmax accuracy": f"{np.mean(hits):.3f}",
        "names completed": f"{np.mean(completed):.3f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--n", type=int, default=240, help="test utterances made (before dropping seen names)")
    parser.add_argument("--train-seeds", type=int, default=40, help="training seeds the checkpoint used")
    parser.add_argument("--bonus", type=float, nargs="+", default=[1.0, 2.0, 3.0], help="biasing bonuses to report")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)

    if not (args.checkpoint / "recognizer.json").is_file():
        print(f"no checkpoint in {args.checkpoint}: training one (train_recognizer.py)")
        trainer = Path(__file__).with_name("train_recognizer.py")
        subprocess.run([sys.executable, str(trainer), "--out", str(args.checkpoint)], check=True)
    model = ContextASRRecognizer.from_pretrained(args.checkpoint)
    progress = json.loads((args.checkpoint / "progress.json").read_text())
    utterances, pool = test_set(args.n, args.train_seeds)
    mixed = build_context_samples(utterances, pool, ContextSampleOptions(seed=1, distractor_ratio=1.0))
    rng = np.random.default_rng(0)
    true_lists = [tuple(rng.permutation(list(u.entities)).tolist()) for u in utterances]
    mixed_lists = [s.hotwords for s in mixed]
    none = [() for _ in utterances]
    distractors = [s.distractors for s in mixed]

    conditions = [
        ("no context", "–", "–", none, None, none, 0.0),
        ("true names in context", "true names", "–", true_lists, None, none, 0.0),
        ("names + distractors in context", "names + distractors", "–", mixed_lists, None, distractors, 0.0),
    ]
    for bonus in args.bonus:
        conditions += [
            ("biasing only", "–", f"names + distractors, bonus {bonus:g}", none, mixed_lists, distractors, bonus),
            (
                "names + distractors in context + biasing",
                "names + distractors",
                f"names + distractors, bonus {bonus:g}",
                mixed_lists,
                mixed_lists,
                distractors,
                bonus,
            ),
        ]
    started = time.perf_counter()
    rows = []
    for name, prompt, bias, prompt_lists, bias_lists, shown_distractors, bonus in conditions:
        row = {"condition": name, "prompt hotwords": prompt, "biasing": bias}
        row |= evaluate(model, utterances, prompt_lists, bias_lists, shown_distractors, bonus)
        rows.append(row)
        print(" | ".join(row[c] for c in COLUMNS), flush=True)

    copying = {
        name: name_piece_scores(model, utterances, lists)
        for name, lists in [("no context", none), ("true names", true_lists), ("names + distractors", mixed_lists)]
    }
    for name, scores in copying.items():
        print(f"teacher-forced, {name}: {scores}")
    text_copying = {
        name: text_only_copying(model, utterances, lists)
        for name, lists in [("true names", true_lists), ("names + distractors", mixed_lists)]
    }
    for name, scores in text_copying.items():
        print(f"text only (no audio), {name}: {scores}")
    entities = sum(len(u.entities) for u in utterances)
    lm = model.language_model.config
    parameters = sum(p.numel() for p in model.parameters())
    audio = model.audio_model.config
    write_results(
        args.results,
        title="Tiny context-aware recogniser: context, distractors and hotword biasing (held-out voices and names)",
        command="nox -s bench-ming-contextasr",
        machine=describe_machine("1 thread", torch=torch.__version__),
        columns=COLUMNS,
        rows=rows,
        notes=(
            f"{len(utterances)} held-out espeak-ng utterances ({entities} entity occurrences) in voices "
            f"{', '.join(TEST_VOICES)} (training: {', '.join(TRAIN_VOICES)}), every name absent from the "
            f"{args.train_seeds} training lexicons. One model: the tiny encoder preset ({audio.encoder_layers} layers, "
            f"{audio.d_model} wide) + projector into a {lm.num_hidden_layers}-layer, {lm.hidden_size}-wide "
            f"{type(model.language_model).__name__} over a {len(model.tokenizer)}-token vocabulary "
            f"({parameters:,} parameters), trained by train_recognizer.py for {progress['step']} steps "
            f"({progress.get('text_steps', 0)} of them text-only, {progress['seconds'] / 60:.1f} CPU min); greedy "
            "decoding. Distractors: one other unseen name per true name. Biasing: HotwordBiasingProcessor over "
            "the tokenizer's pieces, bonus per matched piece as shown. "
            f"Evaluation took {time.perf_counter() - started:.0f} s."
        ),
        extra={"copying": copying, "copying_text_only": text_copying},
    )


if __name__ == "__main__":
    main()
