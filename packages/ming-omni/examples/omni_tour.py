"""A tour of the composed tiny Ming-Flash-Omni (paper §2): see, hear, speak, draw, edit and segment.

1. Understanding that learns: the tiny model (random weights, a byte-level BPE tokenizer trained here) is fine-tuned
   for a few hundred steps on ming-testdata scenes to answer "What colour is the shape?"; gradients run through the
   Qwen2.5-VL vision tower, the projector and the MoE LLM with its image router. Held-out accuracy is printed next
   to chance.
2. A conversation with an image, a moving-shape video and an espeak-ng clip (the answer is untrained text), spoken
   as a WAV (talker + speech tokenizer, streamed patch by patch), a ContextASR request with hotwords, a drawn image
   and an edit as PNGs, and a segmentation mask (ming-genseg's colouring edit through the omni model).

The generators are random tiny weights: the files show the plumbing end to end, not quality.

Run: python packages/ming-omni/examples/omni_tour.py [--steps 300] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ming_contextasr import ContextASRRequest
from ming_imagegen import ImageGenerationOptions
from ming_omni import MingOmni, OmniOptions, write_wav
from ming_testdata import SceneOptions, SpeechOptions, VideoOptions, make_scenes, make_speech, make_videos
from ming_tts_head import GenerationOptions

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
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
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
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = args.out or Path(tempfile.mkdtemp(prefix="ming-omni-"))
    out.mkdir(parents=True, exist_ok=True)
    words = [*COLORS, QUESTION, "circle square triangle star moving shapes meeting transcript English"]
    omni = MingOmni.tiny(seed=0, texts=[" ".join(words)] * 8)

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
    speech = GenerationOptions(min_patches=10, max_patches=25, seed=0)
    answer = omni.generate(
        conversation,
        outputs={"text", "speech"},
        options=OmniOptions(max_new_tokens=12, speech=speech, stream_speech=True),
    )
    chunks = list(answer.speech_chunks)
    audio = torch.cat([c.audio[0] for c in chunks])
    write_wav(out / "answer.wav", audio, answer.sample_rate)
    print(f"   answer (untrained): {answer.text!r}")
    print(f"   spoken answer: {len(chunks)} streamed chunks, {audio.numel() / answer.sample_rate:.2f} s → answer.wav")

    names = [entity.text for entity in utterance.entities]
    request = ContextASRRequest(audio=utterance.audio, topic="a meeting", hotwords=names, language="English")
    transcription = omni.generate(request, options=OmniOptions(max_new_tokens=12)).transcription
    print(f"   ContextASR with hotwords {names}: {transcription.text!r} (reference: {utterance.transcript!r})")

    fast = ImageGenerationOptions(num_inference_steps=8, seed=0)
    drawn = omni.draw("a red circle above a blue square", fast)[0]
    drawn.save(out / "drawn.png")
    reference = scene.image.resize((32, 32))
    edited = omni.edit(reference, "make the shapes green", seed=0)
    edited.save(out / "edited.png")
    mask = omni.segment(scene.image, f"the {scene.objects[0].color} {scene.objects[0].shape}", seed=0)
    Image.fromarray(mask.mask.astype(np.uint8) * 255).save(out / "mask.png")
    print(f"3. drawn.png {drawn.size}, edited.png {edited.size}, mask.png ({int(mask.mask.sum())} px, {mask.prompt!r})")
    print(f"files in {out}")


if __name__ == "__main__":
    main()
