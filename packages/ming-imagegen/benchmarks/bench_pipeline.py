"""Pipeline time per image on CPU: MingImagePipeline vs diffusers' StableDiffusion3Pipeline, and the batched-CFG saving.

Both pipelines get the same 16-channel AutoencoderKL (factor 8, random), the same ``FlowMatchEulerDiscreteScheduler``,
30 steps, classifier-free guidance 5 with both branches in one batch, 128 × 128 images (16² latents → 64 image
tokens) and 64 condition tokens computed beforehand (SD3: ``prompt_embeds`` / ``pooled_prompt_embeds``; ours:
``llm_states`` through the connector, which is timed). The transformers have the same width (6 heads × 64), RMS
QK-norm and about the same parameter count: ours has 6 joint blocks + 1 noise refiner + 1 reference refiner (unused
without references) and the condition MLP, SD3's has 7 joint blocks. Goal: ours ≤ 1.05 × SD3's time per image.

The batched-CFG saving: our pipeline with all guidance branches in one forward vs one forward per branch, for
generation (2 branches) and editing (3 branches: unconditional, reference only, reference + text).

The cases take turns, so a change of load on the shared machine touches all alike. Prints a table and writes
``results/pipeline.json``.

    ming-heavy python packages/ming-imagegen/benchmarks/bench_pipeline.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
from PIL import Image

from ming_imagegen import MingConditioner, MingDiTTransformer2DModel, MingImagePipeline
from ming_testdata.results import describe_machine, write_results

STEPS, SIZE, TOKENS, HEADS = 30, 128, 64, 6
RESULTS = Path(__file__).parent / "results" / "pipeline.json"


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _vae() -> AutoencoderKL:
    blocks = (32, 64, 64, 64)
    return AutoencoderKL(
        latent_channels=16,
        block_out_channels=blocks,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=32,
        use_quant_conv=False,
        use_post_quant_conv=False,
        scaling_factor=1.0,
        shift_factor=0.0,
    ).eval()


def build() -> tuple[MingImagePipeline, StableDiffusion3Pipeline, torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    vae = _vae()
    ours = MingImagePipeline(
        transformer=MingDiTTransformer2DModel(
            sample_size=SIZE // 8,
            in_channels=16,
            num_layers=6,
            num_refiner_layers=1,
            num_reference_refiner_layers=1,
            attention_head_dim=64,
            num_attention_heads=HEADS,
            condition_dim=512,
            joint_attention_dim=1024,
        ).eval(),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        conditioner=MingConditioner(
            llm_hidden_size=512,
            scales=(8,),
            condition_scales=(8,),
            connector_width=256,
            connector_layers=2,
            connector_heads=4,
            condition_dim=512,
        ).eval(),
    )
    peer = StableDiffusion3Pipeline(
        transformer=SD3Transformer2DModel(
            sample_size=SIZE // 8,
            in_channels=16,
            out_channels=16,
            num_layers=7,
            attention_head_dim=64,
            num_attention_heads=HEADS,
            joint_attention_dim=1024,
            caption_projection_dim=HEADS * 64,
            pooled_projection_dim=512,
            pos_embed_max_size=SIZE // 8,
            qk_norm="rms_norm",
        ).eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=None,
        tokenizer_2=None,
        text_encoder_3=None,
        tokenizer_3=None,
    )
    g = torch.Generator().manual_seed(1)
    llm_states = torch.randn(1, TOKENS, 512, generator=g)
    embeds = {
        "prompt_embeds": torch.randn(1, TOKENS, 1024, generator=g),
        "negative_prompt_embeds": torch.randn(1, TOKENS, 1024, generator=g),
        "pooled_prompt_embeds": torch.randn(1, 512, generator=g),
        "negative_pooled_prompt_embeds": torch.randn(1, 512, generator=g),
    }
    return ours, peer, llm_states, embeds


def seconds(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best (least disturbed) seconds per case over ``repeats``; the cases take turns (round-robin) so a change of
    load on the shared machine touches all of them alike."""
    for fn in cases.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ours, peer, llm_states, embeds = build()
    reference = Image.new("RGB", (SIZE, SIZE), (200, 40, 40))
    common = {"num_inference_steps": STEPS, "guidance_scale": 5.0, "output_type": "pil"}

    def run_ours(batched: bool = True, edit: bool = False):
        refs = [reference] if edit else None
        with torch.no_grad():
            return ours(llm_states=llm_states, reference_images=refs, batched_guidance=batched, seed=0, **common)

    def run_peer():
        with torch.no_grad():
            return peer(height=SIZE, width=SIZE, generator=torch.Generator().manual_seed(0), **embeds, **common)

    rows = []

    def add(case: str, pipeline: str, value: float, ratio: str):
        rows.append({"case": case, "pipeline": pipeline, "s / image": f"{value:.2f}", "ratio": ratio})
        print(f"{case:34s} {pipeline:44s} {value:8.2f} s  {ratio}")

    print(
        "transformer parameters:",
        f"ours {_count(ours.transformer) / 1e6:.1f} M, SD3 {_count(peer.transformer) / 1e6:.1f} M",
    )
    t = seconds(
        {
            "peer": run_peer,
            "ours": run_ours,
            "ours, separate": lambda: run_ours(batched=False),
            "edit": lambda: run_ours(edit=True),
            "edit, separate": lambda: run_ours(batched=False, edit=True),
        },
        args.repeats,
    )
    add("generation, CFG 5, 30 steps", "diffusers StableDiffusion3Pipeline", t["peer"], "1.00")
    add("generation, CFG 5, 30 steps", "MingImagePipeline", t["ours"], f"{t['ours'] / t['peer']:.2f} × SD3")
    saving = 100 * (1 - t["ours"] / t["ours, separate"])
    add(
        "generation, 2 branches",
        "MingImagePipeline, one forward per branch",
        t["ours, separate"],
        f"batched saves {saving:.0f}%",
    )
    add("editing, 3 branches (2 / 5)", "MingImagePipeline, batched", t["edit"], "")
    saving = 100 * (1 - t["edit"] / t["edit, separate"])
    add(
        "editing, 3 branches (2 / 5)",
        "MingImagePipeline, one forward per branch",
        t["edit, separate"],
        f"batched saves {saving:.0f}%",
    )

    write_results(
        RESULTS,
        title="Pipeline time per image vs diffusers' StableDiffusion3Pipeline (CPU, fp32)",
        command="nox -s bench-ming-imagegen",
        machine=describe_machine(f"{args.threads} thread(s)", torch=torch.__version__),
        columns=["case", "pipeline", "s / image", "ratio"],
        rows=rows,
        notes=(
            f"{SIZE}×{SIZE} images, random 16-channel AutoencoderKL (factor 8) shared by both, {STEPS} Euler steps, "
            f"{TOKENS} precomputed condition tokens, width {HEADS * 64}. Transformers: ours "
            f"{_count(ours.transformer) / 1e6:.1f} M (6 joint blocks + 1 noise refiner + 1 reference refiner), "
            f"SD3 {_count(peer.transformer) / 1e6:.1f} M (7 joint blocks). Best of {args.repeats} runs, the cases "
            f"taking turns, after a warm-up. Goal: ours ≤ 1.05 × SD3. Ours also runs the connector and applies 3D "
            f"rotary embeddings."
        ),
    )


if __name__ == "__main__":
    main()
