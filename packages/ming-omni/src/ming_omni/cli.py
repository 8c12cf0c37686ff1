"""The ``ming-omni`` command (paper §2's tasks): chat, transcribe, speak, draw, edit, segment, inspect.

Every task but ``inspect`` runs a model from a local directory (``--model DIR``) or the random tiny preset
(``--tiny``, to try the plumbing: its answers are noise).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ming_contextasr import ContextASRRequest
from ming_imagegen import ImageGenerationOptions
from ming_tts_head import GenerationOptions

from .inventory import format_inventory, preset_inventory
from .omni import MingOmni, OmniOptions
from .wav import read_wav, write_wav

__all__ = ["main"]


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="local checkpoint directory (MingOmni.save_pretrained)")
    source.add_argument("--tiny", action="store_true", help="the random tiny preset (plumbing only)")
    parser.add_argument("--bf16", action="store_true", help="load the weights in bfloat16")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampling")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ming-omni", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    inspect = commands.add_parser("inspect", help="parameter table (total / active) of a preset, built on meta")
    inspect.add_argument("--preset", choices=("flash", "tiny"), default="flash")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")

    chat = commands.add_parser("chat", help="answer a prompt about images, videos and audio")
    _model_arguments(chat)
    chat.add_argument("prompt")
    chat.add_argument("--image", type=Path, action="append", default=[], help="image file (repeatable)")
    chat.add_argument("--audio", type=Path, action="append", default=[], help="16 kHz mono WAV (repeatable)")
    chat.add_argument("--video", type=Path, action="append", default=[], help=".npy of (T, H, W, 3) uint8 frames")
    chat.add_argument("--fps", type=float, default=2.0, help="frame rate of the --video files")
    chat.add_argument("--think", action="store_true", help="think mode")
    chat.add_argument("--max-new-tokens", type=int, default=256)
    chat.add_argument("--speak", type=Path, help="also write the spoken answer to this WAV")
    chat.add_argument("--max-patches", type=int, default=500, help="most speech patches (80 ms each)")

    transcribe = commands.add_parser("transcribe", help="context-aware speech recognition")
    _model_arguments(transcribe)
    transcribe.add_argument("audio", type=Path, help="16 kHz mono WAV")
    transcribe.add_argument("--topic")
    transcribe.add_argument("--context", help="text said or written right before the audio")
    transcribe.add_argument("--hotword", action="append", default=[], help="a likely term (repeatable)")
    transcribe.add_argument("--language")
    transcribe.add_argument("--max-new-tokens", type=int, default=256)

    speak = commands.add_parser("speak", help="text to speech")
    _model_arguments(speak)
    speak.add_argument("text")
    speak.add_argument("-o", "--output", type=Path, required=True, help="WAV to write")
    speak.add_argument("--stream", action="store_true", help="decode patch by patch (prints chunk sizes)")
    speak.add_argument("--max-patches", type=int, default=500, help="most speech patches (80 ms each)")

    draw = commands.add_parser("draw", help="text to image")
    _model_arguments(draw)
    draw.add_argument("prompt")
    draw.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    draw.add_argument("--steps", type=int, default=30)

    edit = commands.add_parser("edit", help="edit an image as an instruction says")
    _model_arguments(edit)
    edit.add_argument("image", type=Path)
    edit.add_argument("prompt")
    edit.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")

    segment = commands.add_parser("segment", help="mask of what an expression refers to (segmentation as editing)")
    _model_arguments(segment)
    segment.add_argument("image", type=Path)
    segment.add_argument("expression")
    segment.add_argument("-o", "--output", type=Path, required=True, help="mask PNG to write")
    return parser


def _load(args: argparse.Namespace) -> MingOmni:
    if args.tiny:
        return MingOmni.tiny(seed=args.seed)
    return MingOmni.from_pretrained(args.model, dtype=torch.bfloat16 if args.bf16 else None)


def _chat(args: argparse.Namespace) -> None:
    omni = _load(args)
    content: list[dict] = [{"type": "image", "image": path} for path in args.image]
    content += [{"type": "video", "frames": np.load(path), "fps": args.fps} for path in args.video]
    content += [{"type": "audio", "audio": read_wav(path)} for path in args.audio]
    content.append({"type": "text", "text": args.prompt})
    outputs = {"text", "speech"} if args.speak else {"text"}
    options = OmniOptions(
        max_new_tokens=args.max_new_tokens,
        think=args.think,
        seed=args.seed,
        speech=_speech_options(args),
    )
    out = omni.generate([{"role": "user", "content": content}], outputs=outputs, options=options)
    if out.thinking is not None:
        print(f"<think>{out.thinking}</think>")
    print(out.text)
    if args.speak:
        write_wav(args.speak, out.speech, out.sample_rate)
        print(f"wrote {args.speak} ({out.speech.numel() / out.sample_rate:.2f} s)", file=sys.stderr)


def _transcribe(args: argparse.Namespace) -> None:
    omni = _load(args)
    request = ContextASRRequest(
        audio=read_wav(args.audio),
        topic=args.topic,
        preceding_text=args.context,
        hotwords=args.hotword,
        language=args.language,
    )
    out = omni.generate(request, options=OmniOptions(max_new_tokens=args.max_new_tokens, seed=args.seed))
    print(
        out.transcription.text
        if out.transcription.language is None
        else f"[{out.transcription.language}] {out.transcription.text}"
    )


def _speech_options(args: argparse.Namespace) -> GenerationOptions:
    return GenerationOptions(max_patches=args.max_patches, min_patches=min(10, args.max_patches), seed=args.seed)


def _speak(args: argparse.Namespace) -> None:
    omni = _load(args)
    options = _speech_options(args)
    if args.stream:
        pieces = []
        for chunk in omni.stream_speech(args.text, options):
            pieces.append(chunk.audio[0])
            print(f"chunk {chunk.index}: {chunk.audio.shape[-1]} samples", file=sys.stderr)
        audio = torch.cat(pieces)
    else:
        audio = omni.speak(args.text, options)
    write_wav(args.output, audio, omni.sample_rate)
    print(f"wrote {args.output} ({audio.numel() / omni.sample_rate:.2f} s)")


def _draw(args: argparse.Namespace) -> None:
    omni = _load(args)
    image = omni.draw(args.prompt, ImageGenerationOptions(num_inference_steps=args.steps, seed=args.seed))[0]
    image.save(args.output)
    print(f"wrote {args.output} ({image.width}×{image.height})")


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def _edit(args: argparse.Namespace) -> None:
    edited = _load(args).edit(_rgb(args.image), args.prompt, seed=args.seed)
    edited.save(args.output)
    print(f"wrote {args.output} ({edited.width}×{edited.height})")


def _segment(args: argparse.Namespace) -> None:
    result = _load(args).segment(_rgb(args.image), args.expression, seed=args.seed)
    Image.fromarray(result.mask.astype(np.uint8) * 255).save(args.output)
    print(f"wrote {args.output} ({int(result.mask.sum())} pixels; edit prompt: {result.prompt!r})")


def _inspect(args: argparse.Namespace) -> None:
    rows = preset_inventory(args.preset)
    print(json.dumps([asdict(r) for r in rows], indent=2) if args.json else format_inventory(rows))


_COMMANDS = {
    "inspect": _inspect,
    "chat": _chat,
    "transcribe": _transcribe,
    "speak": _speak,
    "draw": _draw,
    "edit": _edit,
    "segment": _segment,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 with a message on bad input)."""
    args = _parser().parse_args(argv)
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    try:
        _COMMANDS[args.command](args)
    except (ValueError, OSError) as error:  # pydantic's ValidationError is a ValueError
        print(f"ming-omni {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
