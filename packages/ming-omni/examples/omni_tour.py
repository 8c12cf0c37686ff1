"""A tour of the composed tiny Ming-Flash-Omni (paper §2): see, hear, speak, draw, edit and segment.

1. Understanding that learns: the tiny model (random weights, a byte-level BPE tokenizer trained here) is fine-tuned
   for a few hundred steps on ming-testdata scenes to answer "What colour is the shape?"; gradients run through the
   Qwen2.5-VL vision tower, the projector and the MoE LLM with its image router. Held-out accuracy is printed next
   to chance.
2. A conversation with an image, a moving-shape video and an espeak-ng clip (the answer is untrained text), spoken
   as a WAV (talker + speech tokenizer, streamed patch by patch), a digit sentence spoken as a second WAV, and a
   ContextASR request with hotwords.
3. A drawn image and an edit as PNGs, and a segmentation mask (ming-genseg's colouring edit through the omni model).

The generators use the small trained component checkpoints where they are cached (``~/.cache/ming/…``, each remade
by one command printed below when missing) and random tiny weights otherwise; the first lines of the output say
which parts are trained and which are random. ``--random`` ignores the cache (what a fresh machine shows).

Run: python packages/ming-omni/examples/omni_tour.py [--steps 300] [--out DIR] [--random]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import PreTrainedTokenizerFast

from ming_contextasr import ContextASRRecognizer, ContextASRRequest
from ming_imagegen import ImageGenerationOptions, MingImagePipeline
from ming_omni import MingOmni, OmniOptions, byte_tokenizer, word_tokenizer, write_wav
from ming_speech_tokenizer import SpeechTokenizerModel
from ming_testdata import SceneOptions, SpeechOptions, VideoOptions, make_scenes, make_speech, make_videos
from ming_testdata.shape_world import ShapesOptions, make_edit, split_prompts
from ming_tts_head import GenerationOptions, TTSHeadModel

CACHE = Path.home() / ".cache" / "ming"


@dataclass
class Component:
    """A small trained checkpoint of one package, where its training script caches it."""

    name: str
    directory: Path
    remake: str
    load: type
    trained: bool = False
    note: str = ""

    def check(self, use_cache: bool) -> None:
        """Mark as trained when the checkpoint is there and loads with the current code."""
        if not use_cache or not self.directory.is_dir():
            self.note = "not cached" if use_cache else "cache ignored (--random)"
            return
        try:
            self.load.from_pretrained(self.directory)
        except Exception as error:  # a checkpoint left by an older or newer version must not stop the tour
            self.note = f"cached but does not load ({type(error).__name__}: {str(error)[:120]})"
            return
        self.trained = True


def components(use_cache: bool) -> dict[str, Component]:
    found = {
        "speech_tokenizer": Component(
            "speech tokenizer",
            CACHE / "speech-tokenizer" / "tiny-espeak-v9",
            "python packages/ming-speech-tokenizer/benchmarks/train_tiny_espeak.py",
            SpeechTokenizerModel,
        ),
        "talker": Component(
            "talker (TTS head)",
            CACHE / "tts-head" / "tiny-espeak-v9",
            "python packages/ming-tts-head/benchmarks/train_espeak_tts.py",
            TTSHeadModel,
        ),
        "image_generator": Component(
            "image generator",
            CACHE / "imagegen" / "shapes-tiny",
            "python packages/ming-imagegen/benchmarks/train_shapes.py",
            MingImagePipeline,
        ),
        "recogniser": Component(
            "ContextASR recogniser",
            CACHE / "contextasr" / "recogniser-tiny",
            "python packages/ming-contextasr/benchmarks/train_recognizer.py",
            ContextASRRecognizer,
        ),
    }
    for component in found.values():
        component.check(use_cache)
    return found


def report(found: dict[str, Component], omni: MingOmni) -> None:
    print("components:")
    print("  vision tower + projector, audio encoder + projector, MoE LLM: random tiny weights (fine-tuned in step 1)")
    for key, component in found.items():
        if component.trained:
            how = {
                "speech_tokenizer": "espeak-ng speech; decodes the talker's latents",
                "talker": "digit words ('seven two nine') in one espeak-ng voice, one text id per digit word",
                "image_generator": (
                    "shape scenes and recolouring edits, conditioned by its own small LM (trained with it), "
                    "not by the omni LLM"
                ),
                "recogniser": "its own encoder + small LM, run beside the omni model (whose LLM it was not trained "
                "with); the omni route stays untrained",
            }[key]
            print(f"  {component.name}: TRAINED, {component.directory} ({how})")
        else:
            fallback = "not run" if key == "recogniser" else "random tiny weights"
            print(f"  {component.name}: {fallback}: {component.note}; remake: {component.remake}")
    if found["talker"].trained != found["speech_tokenizer"].trained:
        print(
            "  note: the talker was trained on the trained tokenizer's latents; with only one of them, speech is noise"
        )
    if not omni.images_use_omni_llm:
        print(
            "  note: images read the last user turn's text through the image generator's own LM, not the conversation"
        )


def talker_words(directory: Path) -> PreTrainedTokenizerFast:
    """The trained head's text ids: one per word of the vocabulary it was trained on (any other word is unknown);
    UTF-8 bytes for a head made by the earlier recipe, which recorded no vocabulary."""
    vocabulary = json.loads((directory / "training.json").read_text()).get("text_vocabulary")
    return word_tokenizer(vocabulary) if vocabulary else byte_tokenizer()


def talker_sampling(component: Component) -> dict[str, float]:
    """The sampler settings the trained head's recipe chose on its validation sentences (``generation.json``, written
    by ming-tts-head's ``tune_espeak_generation.py``); the paper's defaults otherwise."""
    chosen = component.directory / "generation.json"
    if not (component.trained and chosen.is_file()):
        return {}
    settings = json.loads(chosen.read_text())
    return {key: settings[key] for key in ("cfg_scale", "sway_coefficient")}


def build(found: dict[str, Component], words: list[str]) -> MingOmni:
    talker, speech, image = (found[k] for k in ("talker", "speech_tokenizer", "image_generator"))
    return MingOmni.tiny(
        seed=0,
        texts=[" ".join(words)] * 8,
        talker=talker.directory if talker.trained else None,
        talker_tokenizer=talker_words(talker.directory) if talker.trained else None,
        speech_tokenizer=speech.directory if speech.trained else None,
        image_generator=image.directory if image.trained else None,
    )


COLORS = ("red", "green", "blue", "yellow")
QUESTION = "What colour is the shape?"


def _colour_conversation(image: Image.Image, answer: str | None = None) -> list[dict]:
    turns = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": QUESTION}]}]
    return [*turns, {"role": "assistant", "content": answer}] if answer else turns


def fine_tune_colours(omni: MingOmni, steps: int) -> tuple[float, float]:
    """Train on single-shape scenes; return (held-out accuracy before, after)."""
    options = SceneOptions(
        n=512,
        seed=0,
        width=56,
        height=56,
        colors=COLORS,
        backgrounds=("white",),
        max_objects=1,
        min_size=0.6,
        max_size=0.9,
    )
    train = make_scenes(options)
    held_out = make_scenes(options.model_copy(update={"n": 64, "seed": 1}))
    processor, model = omni.processor, omni.model

    def accuracy() -> float:
        batch = processor([_colour_conversation(s.image) for s in held_out])
        with torch.no_grad():
            logits = model(**batch.model_kwargs()).logits[:, -1]
        first = {c: processor.tokenizer(c, add_special_tokens=False)["input_ids"][0] for c in COLORS}
        choice = [COLORS[i] for i in logits[:, list(first.values())].argmax(-1).tolist()]
        return float(np.mean([c == s.objects[0].color for c, s in zip(choice, held_out, strict=True)]))

    before = accuracy()
    # at 3e-3 without clipping the run could diverge after 150 steps and end at chance
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    rng = np.random.default_rng(0)
    for step in range(steps):
        scenes = [train[i] for i in rng.choice(len(train), 16, replace=False)]
        conversations = [_colour_conversation(s.image, s.objects[0].color) for s in scenes]
        batch = processor(conversations, add_generation_prompt=False)
        labels = torch.full_like(batch.input_ids, -100)
        for row, scene in enumerate(scenes):  # learn the answer and the turn's end only
            answer = processor.tokenizer(scene.objects[0].color, add_special_tokens=False)["input_ids"]
            labels[row, -(len(answer) + 1) :] = batch.input_ids[row, -(len(answer) + 1) :]
        loss = model(**batch.model_kwargs(), labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 50 == 0 or step == steps - 1:
            print(f"  step {step:4d}  loss {loss.item():.3f}")
    model.eval()
    return before, accuracy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps of the colour question")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary folder)")
    parser.add_argument("--random", action="store_true", help="ignore the cached trained component checkpoints")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = args.out or Path(tempfile.mkdtemp(prefix="ming-omni-"))
    out.mkdir(parents=True, exist_ok=True)
    words = [*COLORS, QUESTION, "circle square triangle star moving shapes meeting transcript English"]
    found = components(use_cache=not args.random)
    omni = build(found, words)
    report(found, omni)

    start = time.perf_counter()
    before, after = fine_tune_colours(omni, args.steps)
    print(
        f"1. colour question, held-out accuracy: {before:.2f} → {after:.2f} after {args.steps} steps "
        f"(chance {1 / len(COLORS):.2f}; {time.perf_counter() - start:.0f} s)"
    )

    scene = make_scenes(SceneOptions(n=1, seed=5, width=64, height=64))[0]
    clip = make_videos(VideoOptions(n=1, seed=5))[0]
    utterance = make_speech(SpeechOptions(n=1, seed=5))[0]
    conversation = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": scene.image},
                {"type": "video", "frames": clip.frames, "fps": clip.fps},
                {"type": "audio", "audio": utterance.audio},
                {"type": "text", "text": "What do you see and hear?"},
            ],
        }
    ]
    inputs = omni.processor(conversation)
    print(
        f"2. conversation: {inputs.input_ids.shape[1]} tokens "
        f"(image {inputs.image_grid_thw.tolist()}, video {inputs.video_grid_thw.tolist()} vision patches, "
        f"δ = {inputs.temporal_spacing.item():.2f}, audio {len(utterance.audio) / 16000:.1f} s)"
    )
    trained_talker = found["talker"].trained
    talker = "trained talker" if trained_talker else "random talker"
    sampling = talker_sampling(found["talker"])
    speech = GenerationOptions(min_patches=10, max_patches=25, seed=0, **sampling)
    answer = omni.generate(
        conversation,
        outputs={"text", "speech"},
        options=OmniOptions(max_new_tokens=12, speech=speech, stream_speech=True),
    )
    chunks = list(answer.speech_chunks)
    audio = torch.cat([c.audio[0] for c in chunks])
    write_wav(out / "answer.wav", audio, answer.sample_rate)
    print(f"   answer (untrained): {answer.text!r}")
    outside = ", text outside its training domain" if trained_talker else ""
    seconds = audio.numel() / answer.sample_rate
    print(f"   spoken answer ({talker}{outside}): {len(chunks)} streamed chunks, {seconds:.2f} s → answer.wav")
    digits = "seven two nine four"
    spoken = omni.speak(digits, GenerationOptions(max_patches=60, seed=0, **sampling))
    write_wav(out / "digits.wav", spoken, omni.sample_rate)
    domain = ", its training domain" if trained_talker else ""
    print(f"   {digits!r} ({talker}{domain}): {spoken.numel() / omni.sample_rate:.2f} s → digits.wav")

    names = [entity.text for entity in utterance.entities]
    request = ContextASRRequest(audio=utterance.audio, topic="a meeting", hotwords=names, language="English")
    transcription = omni.generate(request, options=OmniOptions(max_new_tokens=12)).transcription
    print(f"   ContextASR with hotwords {names}, reference: {utterance.transcript!r}")
    print(f"     omni model (untrained LLM): {transcription.text!r}")
    if found["recogniser"].trained:
        recogniser = ContextASRRecognizer.from_pretrained(found["recogniser"].directory)
        trained = recogniser.transcribe([request], bias_hotwords=[names])[0]
        print(f"     trained recogniser (its own LM, with hotword biasing): {trained.text!r}")

    shapes = ShapesOptions()
    saved_options = found["image_generator"].directory / "shapes_options.json"
    if found["image_generator"].trained and saved_options.is_file():
        shapes = ShapesOptions.model_validate_json(saved_options.read_text())  # the options it was trained on
    held_out = [spec for specs in split_prompts(shapes).held_out.values() for spec in specs]
    prompt = held_out[0].text
    fast = ImageGenerationOptions(num_inference_steps=8, seed=0)
    drawn = omni.draw(prompt, fast)[0]
    drawn.save(out / "drawn.png")
    edit = make_edit(held_out, 0, shapes)
    edited = omni.edit(edit.reference.image, edit.instruction, seed=0)
    edit.reference.image.save(out / "edit_reference.png")
    edited.save(out / "edited.png")
    mask = omni.segment(edit.reference.image, edit.expression, seed=0)
    Image.fromarray(mask.mask.astype(np.uint8) * 255).save(out / "mask.png")
    which = "trained" if found["image_generator"].trained else "random"
    print(f"3. {which} image generator, held-out prompt {prompt!r} → drawn.png {drawn.size}")
    print(
        f"   edit {edit.instruction!r} → edited.png; segment {edit.expression!r} → mask.png ({int(mask.mask.sum())} px)"
    )
    print(f"files in {out}")


if __name__ == "__main__":
    main()
