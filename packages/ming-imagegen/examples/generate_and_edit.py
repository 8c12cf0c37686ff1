"""Tour of the pipeline's API: generation, quoted text, editing with several references, identity crops, options,
save → load. Uses the shapes checkpoint that ``train_shapes.py`` makes when it exists (``--checkpoint``), else a
freshly initialised tiny pipeline (its pictures are then noise-like: the point is the API, not the art).

Run: python packages/ming-imagegen/examples/generate_and_edit.py [--checkpoint DIR] [--out DIR]   (~1 minute)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from diffusers.utils import make_image_grid

from ming_imagegen import ImageGenerationOptions, MingImagePipeline, tiny_pipeline
from ming_testdata import SceneOptions, make_scenes

DEFAULT_CHECKPOINT = Path.home() / ".cache" / "ming" / "imagegen" / "shapes-tiny"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--out", type=Path, default=Path("imagegen-tour"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if (args.checkpoint / "model_index.json").exists():
        pipe = MingImagePipeline.from_pretrained(args.checkpoint)
        print(f"loaded {args.checkpoint}")
    else:
        pipe = tiny_pipeline(image_size=32)
        print("no trained checkpoint: using a random tiny pipeline")
    side = pipe.default_size
    print(f"default size {side}², sides must be multiples of {pipe.size_multiple}")

    # 1. Text to image: options as a pydantic model, or the same names as keyword arguments. Fields left unset take the
    # pipeline's own defaults: the shapes checkpoint keeps the guidance scales chosen on its validation prompts.
    defaults = pipe.default_options
    print(f"default text guidance {defaults.guidance_scale:g}, editing {defaults.edit_text_scale:g}")
    options = ImageGenerationOptions(num_inference_steps=20, seed=0)
    prompts = ["a red circle", "two blue squares", "a green triangle left of a yellow circle"]
    generated = pipe(prompts, options=options).images

    # 2. Quoted text goes through the Glyph-ByT5 branch as extra condition tokens.
    condition = pipe.encode_condition(['a sign saying "OPEN"'])
    print(
        f"condition tokens for a quoted prompt: {condition.tokens.shape[1]} ({int(condition.types.eq(1).sum())} glyph)"
    )

    # 3. Editing: references join the image tokens (each with its concept vector); 3-branch guidance (image 2, text
    # the pipeline's edit_guidance_scale, else guidance_scale).
    scene = make_scenes(SceneOptions(n=2, width=side, height=side, max_objects=2, seed=1))
    edited = pipe.edit(scene[0].image, f"make the {scene[0].objects[0].shape} purple", seed=0)
    fused = pipe(
        "subject from image 1, background from image 2",
        reference_images=[scene[0].image, scene[1].image],
        options=options,
    ).images[0]
    unchanged = pipe("anything", reference_images=[scene[0].image], num_inference_steps=0).images[0]  # reconstruction

    # 4. Identity: a subject crop's VAE latents pooled into identity tokens (pipelines built with identity=True;
    # the shapes recipe trains none, and then the grid shows the crop itself).
    crop = scene[0].image.crop(scene[0].objects[0].bbox).resize((side, side))
    if pipe.identity_encoder is not None:
        identity_cell = pipe("the same object, bigger", identity_image=crop, options=options).images[0]
    else:
        identity_cell = crop
        print("this pipeline has no identity encoder: the identity cell shows the crop, not a generation")

    args.out.mkdir(parents=True, exist_ok=True)
    cells = [*generated, scene[0].image, edited, fused, unchanged, identity_cell, scene[1].image]
    make_image_grid([c.resize((4 * side, 4 * side)) for c in cells], rows=3, cols=3).save(args.out / "tour.png")
    print(f"wrote {args.out / 'tour.png'}: generated ×3 | reference, edit, fusion | reconstruction, identity, ref 2")

    # 5. Save → load gives the same pictures.
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(tmp)
        again = MingImagePipeline.from_pretrained(tmp)(prompts, options=options, output_type="pt").images
    same = torch.equal(again, pipe(prompts, options=options, output_type="pt").images)
    print(f"save → load → same images: {same}")


if __name__ == "__main__":
    main()
