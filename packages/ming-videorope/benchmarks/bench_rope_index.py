"""Position-index builder: ming-videorope vs transformers' ``get_rope_index`` of Qwen2.5-Omni and Qwen2-VL.

A 64-sample, left-padded batch mixing text, images and videos, each visual item between a start and an end text
token as in real prompts. All builders run on the same batch; with the M-RoPE convention our ids must be identical
to both of transformers' (checked here, the benchmark fails otherwise), and the VideoRoPE layout is timed alongside.
Target: ≥ 50× faster than transformers. Prints a table and writes ``results/rope_index.json``.

    python packages/ming-videorope/benchmarks/bench_rope_index.py [--samples 64] [--repeats 20]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import torch
import transformers
from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniPreTrainedModelForConditionalGeneration
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel

from ming_testdata.results import describe_machine, write_results
from ming_testdata.timing import median_seconds
from ming_videorope import Modality, get_position_ids

MERGE = 2  # Qwen's spatial merge: their grids are in patches, ours in LLM tokens
SPACING = 2  # δ for videos; Qwen2.5-Omni gets it as seconds_per_grid × position_id_per_seconds = 2 × 1
# Token ids Qwen2.5-Omni's builder searches for (any distinct values do; these are its defaults).
TEXT_ID, IMAGE_ID, VIDEO_ID, AUDIO_ID, VISION_START_ID, AUDIO_START_ID = 100, 151655, 151656, 151646, 151652, 151647


def make_batch(n_samples: int, seed: int) -> dict[str, torch.Tensor]:
    """Random interleaved samples: text runs between images (T=1) and videos (T <= max(H, W), where the conventions
    agree), left-padded."""
    rng = torch.Generator().manual_seed(seed)

    def randint(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (1,), generator=rng))

    rows, images, videos = [], [], []
    for _ in range(n_samples):
        ids = [int(Modality.TEXT)] * randint(5, 40)
        for _ in range(randint(0, 4)):
            if randint(0, 1):
                grid = [1, randint(2, 16), randint(2, 16)]
                images.append(grid)
                ids += [int(Modality.IMAGE)] * (grid[1] * grid[2])
            else:
                h, w = randint(2, 10), randint(2, 10)
                grid = [randint(2, max(h, w)), h, w]
                videos.append(grid)
                ids += [int(Modality.VIDEO)] * (grid[0] * h * w)
            ids += [int(Modality.TEXT)] * randint(2, 30)  # an end token, and the next start token
        rows.append(ids)
    length = max(len(r) for r in rows)
    modality = torch.zeros(n_samples, length, dtype=torch.long)
    mask = torch.zeros(n_samples, length, dtype=torch.long)
    for b, ids in enumerate(rows):
        modality[b, length - len(ids) :] = torch.tensor(ids)
        mask[b, length - len(ids) :] = 1
    # Qwen2.5-Omni finds each visual item by the start token right before it (the text token before every run).
    input_ids = torch.full_like(modality, TEXT_ID)
    input_ids[modality == Modality.IMAGE] = IMAGE_ID
    input_ids[modality == Modality.VIDEO] = VIDEO_ID
    visual = modality != Modality.TEXT
    run_start = torch.zeros_like(visual)
    run_start[:, 1:] = visual[:, 1:] & ~visual[:, :-1]
    input_ids[:, :-1][run_start[:, 1:]] = VISION_START_ID
    return {
        "input_ids": input_ids,
        "modality": modality,
        "mask": mask,
        "images": torch.tensor(images, dtype=torch.long).reshape(-1, 3),
        "videos": torch.tensor(videos, dtype=torch.long).reshape(-1, 3),
    }


def transformers_rope_index(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' Qwen2-VL builder; it reads only the merge size from the model, so no model is built."""
    fake = SimpleNamespace(config=SimpleNamespace(vision_config=SimpleNamespace(spatial_merge_size=MERGE)))
    fake.get_vision_position_ids = Qwen2VLModel.get_vision_position_ids.__get__(fake)
    scale = torch.tensor([1, MERGE, MERGE])
    return Qwen2VLModel.get_rope_index(
        fake,
        input_ids=torch.zeros_like(batch["modality"]),
        mm_token_type_ids=batch["modality"],
        image_grid_thw=batch["images"] * scale,
        video_grid_thw=batch["videos"] * scale,
        attention_mask=batch["mask"],
    )


def transformers_omni_rope_index(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' Qwen2.5-Omni builder; it reads token ids and a few numbers from the config, so no model."""
    cls = Qwen2_5OmniPreTrainedModelForConditionalGeneration
    fake = SimpleNamespace(
        spatial_merge_size=MERGE,
        config=SimpleNamespace(
            image_token_id=IMAGE_ID,
            video_token_id=VIDEO_ID,
            audio_token_id=AUDIO_ID,
            vision_start_token_id=VISION_START_ID,
            audio_start_token_id=AUDIO_START_ID,
            position_id_per_seconds=1,
            seconds_per_chunk=2,
        ),
    )
    fake.get_llm_pos_ids_for_vision = cls.get_llm_pos_ids_for_vision.__get__(fake)
    scale = torch.tensor([1, MERGE, MERGE])
    return cls.get_rope_index(
        fake,
        input_ids=batch["input_ids"],
        image_grid_thw=batch["images"] * scale,
        video_grid_thw=batch["videos"] * scale,
        attention_mask=batch["mask"],
        second_per_grids=torch.full((len(batch["videos"]),), float(SPACING)),
    )


def ours(batch: dict[str, torch.Tensor], style: str, spacing: float) -> torch.Tensor:
    return get_position_ids(
        batch["modality"],
        batch["images"],
        batch["videos"],
        attention_mask=batch["mask"],
        style=style,
        temporal_spacing=spacing,
    ).position_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (both builders)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rope_index.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    batch = make_batch(args.samples, args.seed)
    valid = batch["mask"].bool()
    # Identity where the conventions agree: Qwen2-VL uses δ = 1 and resumes text after max(H, W), which equals our
    # "largest index + 1" because every video here has T <= max(H, W); Qwen2.5-Omni takes δ from seconds per grid.
    checks = {
        "Qwen2-VL": (transformers_rope_index(batch)[0], ours(batch, "mrope", 1.0)),
        "Qwen2.5-Omni": (transformers_omni_rope_index(batch)[0], ours(batch, "mrope", SPACING)),
    }
    for name, (theirs, mine) in checks.items():
        if not torch.equal(mine[:, valid], theirs[:, valid]):
            raise SystemExit(f"M-RoPE ids differ from transformers' {name} get_rope_index on the benchmark batch")

    version = transformers.__version__
    timed = [
        (
            f"transformers {version} Qwen2.5-Omni get_rope_index",
            lambda: transformers_omni_rope_index(batch),
            "reference",
        ),
        (f"transformers {version} Qwen2-VL get_rope_index", lambda: transformers_rope_index(batch), "reference"),
        ("ming_videorope M-RoPE (δ=1)", lambda: ours(batch, "mrope", 1.0), "identical to Qwen2-VL"),
        ("ming_videorope M-RoPE (δ=2)", lambda: ours(batch, "mrope", SPACING), "identical to Qwen2.5-Omni"),
        ("ming_videorope VideoRoPE (δ=2)", lambda: ours(batch, "videorope", SPACING), "VideoRoPE layout"),
    ]
    times = {label: 1e3 * median_seconds(fn, args.repeats) for label, fn, _ in timed}
    omni, qwen2vl = times[timed[0][0]], times[timed[1][0]]
    worst = max(times[label] for label, _, _ in timed[2:])
    rows = [
        {
            "builder": label,
            "median ms": f"{times[label]:.2f}",
            "× vs Qwen2.5-Omni": f"{omni / times[label]:.1f}",
            "× vs Qwen2-VL": f"{qwen2vl / times[label]:.1f}",
            "ids": ids,
        }
        for label, _, ids in timed
    ]
    n_tokens = int(valid.sum())
    write_results(
        args.out,
        title="Position-index builder vs transformers (64-sample mixed batch)",
        command="nox -s bench-ming-videorope",
        machine=describe_machine(f"{args.threads} thread(s)", torch=torch.__version__),
        columns=["builder", "median ms", "× vs Qwen2.5-Omni", "× vs Qwen2-VL", "ids"],
        rows=rows,
        notes=(
            f"Batch: {args.samples} left-padded samples, {batch['modality'].shape[1]} columns, {n_tokens} real tokens, "
            f"{len(batch['images'])} images and {len(batch['videos'])} videos; median of {args.repeats} runs after a "
            f"warm-up, {args.threads} thread(s). Target ≥ 50× faster than transformers: "
            f"{'met' if min(omni, qwen2vl) / worst >= 50 else 'not met'} (VideoRoPE builder "
            f"{omni / times[timed[-1][0]]:.1f}× vs Qwen2.5-Omni, {qwen2vl / times[timed[-1][0]]:.1f}× vs Qwen2-VL)."
        ),
    )


if __name__ == "__main__":
    main()
