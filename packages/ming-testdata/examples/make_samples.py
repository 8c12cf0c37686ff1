"""Make a couple of each kind of sample into a temporary directory and print what they hold.

Run: ``python packages/ming-testdata/examples/make_samples.py [OUT_DIR]`` (speech needs espeak-ng:
``apt-get install espeak-ng``). Without ``OUT_DIR`` the files go to a temporary directory that is removed at the end.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from scipy.io import wavfile

from ming_testdata import (
    EspeakNotFoundError,
    SceneOptions,
    SpeechOptions,
    TextImageOptions,
    VideoOptions,
    make_scenes,
    make_speech,
    make_text_images,
    make_videos,
)


def make_samples(out: Path) -> None:
    """Write two samples of each kind to ``out`` and print their labels."""
    print(f"writing samples to {out}")

    print("\nspeech (espeak-ng, 16 kHz):")
    try:
        for language in ("en", "cmn"):
            # A cache inside the output directory keeps the example from touching ~/.cache.
            options = SpeechOptions(n=2, seed=0, language=language, word_timings=language == "cmn", cache_dir=out)
            for i, utterance in enumerate(make_speech(options)):
                wavfile.write(out / f"speech_{language}_{i}.wav", utterance.sample_rate, utterance.audio)
                entities = ", ".join(f"{e.type}={e.text!r}" for e in utterance.entities)
                print(f"  [{utterance.voice}, {utterance.duration_s:.2f} s] {utterance.transcript}  ({entities})")
                if utterance.words:
                    print("    words: " + " ".join(f"{w.text}@{w.start_s:.2f}-{w.end_s:.2f}" for w in utterance.words))
    except EspeakNotFoundError as error:
        print(f"  skipped: {error}")

    print("\nscenes:")
    for i, scene in enumerate(make_scenes(SceneOptions(n=2, seed=0))):
        scene.image.save(out / f"scene_{i}.png")
        print(f"  {scene.caption}")
        for obj in scene.objects:
            print(f"    {obj.color} {obj.shape}: bbox {obj.bbox}, {obj.area} visible pixels")

    print("\ntext images:")
    for i, sample in enumerate(make_text_images(TextImageOptions(n=2, seed=0))):
        sample.image.save(out / f"text_{i}.png")
        print(f"  {sample.text!r} in {sample.color} on {sample.background}, font size {sample.font_size}")

    print("\nvideos:")
    for clip in make_videos(VideoOptions(n=2, seed=0)):
        print(f"  {clip.frames.shape[0]} frames of {clip.frames.shape[2]}x{clip.frames.shape[1]} at {clip.fps} fps")
        for obj in clip.objects:
            first = obj.centers[obj.appear_frame]
            print(
                f"    {obj.color} {obj.shape} from frame {obj.appear_frame} at ({first[0]:.1f}, {first[1]:.1f}), "
                f"velocity ({obj.velocity[0]:+.2f}, {obj.velocity[1]:+.2f}) px/frame"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        target.mkdir(parents=True, exist_ok=True)
        make_samples(target)
    else:
        with tempfile.TemporaryDirectory(prefix="ming-testdata-") as tmp:
            make_samples(Path(tmp))
