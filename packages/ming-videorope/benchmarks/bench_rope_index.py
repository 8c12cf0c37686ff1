"""Position-index builder: ming-videorope vs transformers' Qwen2-VL ``get_rope_index``.

A 64-sample, left-padded batch mixing text, images and videos. Both builders run on the same batch; with the M-RoPE
convention our ids must be identical to transformers' (checked here, the benchmark fails otherwise), and the
VideoRoPE layout is timed alongside. Target: ≥ 50× faster than transformers. Prints a table and writes
``results/rope_index.json``.

    python packages/ming-videorope/benchmarks/bench_rope_index.py [--samples 64] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import transformers
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLModel

from ming_videorope import Modality, get_position_ids

MERGE = 2  # Qwen2-VL's spatial merge: its grids are in patches, ours in LLM tokens


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
            ids += [int(Modality.TEXT)] * randint(1, 30)
        rows.append(ids)
    length = max(len(r) for r in rows)
    modality = torch.zeros(n_samples, length, dtype=torch.long)
    mask = torch.zeros(n_samples, length, dtype=torch.long)
    for b, ids in enumerate(rows):
        modality[b, length - len(ids) :] = torch.tensor(ids)
        mask[b, length - len(ids) :] = 1
    return {
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


def ours(batch: dict[str, torch.Tensor], style: str) -> torch.Tensor:
    return get_position_ids(
        batch["modality"],
        batch["images"],
        batch["videos"],
        attention_mask=batch["mask"],
        style=style,
        temporal_spacing=1.0 if style == "mrope" else 2.0,
    ).position_ids


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rope_index.json")
    args = parser.parse_args()

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    batch = make_batch(args.samples, args.seed)
    valid = batch["mask"].bool()
    theirs, _ = transformers_rope_index(batch)
    identical = torch.equal(ours(batch, "mrope")[:, valid], theirs[:, valid])
    if not identical:
        raise SystemExit("M-RoPE ids differ from transformers' Qwen2-VL get_rope_index on the benchmark batch")

    t_theirs = median_ms(lambda: transformers_rope_index(batch), args.repeats)
    rows = [
        {
            "builder": f"transformers {transformers.__version__} Qwen2VLModel.get_rope_index (M-RoPE)",
            "median ms": f"{t_theirs:.2f}",
            "speed-up": "1.0×",
            "ids": "reference",
        }
    ]
    for style, label in (("mrope", "M-RoPE"), ("videorope", "VideoRoPE (DL + ATS, δ=2)")):
        t_ours = median_ms(lambda style=style: ours(batch, style), args.repeats)
        rows.append(
            {
                "builder": f"ming_videorope.get_position_ids ({label})",
                "median ms": f"{t_ours:.2f}",
                "speed-up": f"{t_theirs / t_ours:.0f}×",
                "ids": "identical" if style == "mrope" else "VideoRoPE layout (differs by design)",
            }
        )
    n_tokens = int(valid.sum())
    result = {
        "title": "Position-index builder vs transformers (64-sample mixed batch)",
        "command": "nox -s bench-ming-videorope",
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
        "columns": ["builder", "median ms", "speed-up", "ids"],
        "rows": rows,
        "notes": (
            f"Batch: {args.samples} left-padded samples, {batch['modality'].shape[1]} columns, {n_tokens} real tokens, "
            f"{len(batch['images'])} images and {len(batch['videos'])} videos; median of {args.repeats} runs after a "
            "warm-up. Target ≥ 50× faster than transformers."
        ),
    }
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in result["columns"]}
    print(" | ".join(c.ljust(widths[c]) for c in result["columns"]))
    print("-+-".join("-" * widths[c] for c in result["columns"]))
    for row in rows:
        print(" | ".join(str(row[c]).ljust(widths[c]) for c in result["columns"]))
    print(result["notes"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
