"""Command line: ``ming-testdata speech|images|video --out DIR --n N --seed S`` writes samples and a manifest.

Each command writes its samples (``.wav`` float32, ``.png``, ``.npz``) and ``manifest.json`` holding the options
and every sample's labels.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import wavfile

from .espeak import EspeakError, EspeakNotFoundError
from .images import SceneOptions, make_scenes
from .speech import SpeechOptions, make_speech
from .text_images import TextImageOptions, make_text_images
from .video import VideoOptions, make_videos


def _options(args: argparse.Namespace) -> SpeechOptions | SceneOptions | TextImageOptions | VideoOptions:
    """The command's options model (validated before anything is written)."""
    given: dict[str, Any] = {"n": args.n, "seed": args.seed}
    if args.command == "speech":
        return SpeechOptions(**given, language=args.language, word_timings=args.word_timings, cache_dir=args.cache_dir)
    # Options left out on the command line keep the model's defaults, which differ between makers.
    names = ("width", "height") if args.command == "images" else ("width", "height", "frames", "fps")
    given |= {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.command == "video":
        return VideoOptions(**given)
    return TextImageOptions(**given) if args.kind == "text" else SceneOptions(**given)


def _write_speech(options: SpeechOptions, out: Path) -> list[dict[str, Any]]:
    items = []
    for i, utterance in enumerate(make_speech(options)):
        name = f"speech_{i:04d}.wav"
        wavfile.write(out / name, utterance.sample_rate, utterance.audio)
        items.append({"file": name, **utterance.label()})
    return items


def _write_text_images(options: TextImageOptions, out: Path) -> list[dict[str, Any]]:
    items = []
    for i, sample in enumerate(make_text_images(options)):
        name = f"text_{i:04d}.png"
        sample.image.save(out / name)
        np.savez_compressed(out / f"text_{i:04d}_mask.npz", mask=sample.mask)
        items.append({"file": name, "mask_file": f"text_{i:04d}_mask.npz", **sample.label()})
    return items


def _write_scenes(options: SceneOptions, out: Path) -> list[dict[str, Any]]:
    items = []
    for i, scene in enumerate(make_scenes(options)):
        name = f"scene_{i:04d}.png"
        scene.image.save(out / name)
        # masks[k] belongs to objects[k] of the manifest entry.
        np.savez_compressed(out / f"scene_{i:04d}_masks.npz", masks=np.stack([o.mask for o in scene.objects]))
        items.append({"file": name, "mask_file": f"scene_{i:04d}_masks.npz", **scene.label()})
    return items


def _write_videos(options: VideoOptions, out: Path) -> list[dict[str, Any]]:
    items = []
    for i, clip in enumerate(make_videos(options)):
        name = f"video_{i:04d}.npz"
        # masks[k] is (T, H, W) for objects[k] of the manifest entry.
        masks = np.stack([o.masks for o in clip.objects])
        np.savez_compressed(out / name, frames=clip.frames, fps=clip.fps, masks=masks)
        items.append({"file": name, **clip.label()})
    return items


# Manifest kind and sample writer of each options model.
_WRITERS: dict[type, tuple[str, Callable[[Any, Path], list[dict[str, Any]]]]] = {
    SpeechOptions: ("speech", _write_speech),
    TextImageOptions: ("text", _write_text_images),
    SceneOptions: ("images", _write_scenes),
    VideoOptions: ("video", _write_videos),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ming-testdata", description="Make offline test data for the ming packages.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
        sub.add_argument("--n", type=int, default=8, help="number of samples (default 8)")
        sub.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        return sub

    speech = add("speech", "sentences spoken by espeak-ng (16 kHz float32 WAV) with transcripts and entities")
    speech.add_argument("--language", choices=("en", "cmn"), default="en")
    speech.add_argument("--word-timings", action="store_true", help="speak word by word to get exact word timings")
    speech.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache root (default: $MING_TESTDATA_CACHE, else ~/.cache/ming-testdata)",
    )

    images = add("images", "PNG scenes of coloured shapes (or text) with masks and labels")
    images.add_argument("--kind", choices=("shapes", "text"), default="shapes")
    images.add_argument("--width", type=int, default=None)
    images.add_argument("--height", type=int, default=None)

    video = add("video", "NPZ clips of moving shapes with per-frame labels")
    video.add_argument("--width", type=int, default=None)
    video.add_argument("--height", type=int, default=None)
    video.add_argument("--frames", type=int, default=None)
    video.add_argument("--fps", type=float, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (bad options and failed makers exit with status 2)."""
    parser = _parser()
    args = parser.parse_args(argv)
    out: Path = args.out
    # ValidationError is a ValueError; makers raise ValueError for requests they cannot meet.
    try:
        options = _options(args)
        kind, write = _WRITERS[type(options)]
        out.mkdir(parents=True, exist_ok=True)
        items = write(options, out)
    except (ValueError, EspeakError, EspeakNotFoundError) as error:
        parser.exit(2, f"ming-testdata: error: {error}\n")
    manifest = {"kind": kind, "options": options.model_dump(mode="json"), "items": items}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    print(f"wrote {len(items)} {kind} samples and manifest.json to {out}")
    return 0
