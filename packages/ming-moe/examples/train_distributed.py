"""Train the tiny BailingMoeV2 preset sharded over torch.distributed: FSDP2 + expert parallelism, DCP checkpoints.

Run with torchrun, one process per device (CPU → gloo, ``--device cuda`` → NCCL, one GPU per process); plain
``python train_distributed.py`` starts 2 CPU processes itself:

    torchrun --standalone --nproc-per-node 2 packages/ming-moe/examples/train_distributed.py \
        --expert-parallel 2 --out runs/ep2

``data_parallel`` is the world size divided by ``--expert-parallel``; every rank reads its own batches. A DCP
checkpoint (model and optimizer) is written every ``--save-every`` steps to ``--out/checkpoint-<step>``; a new run
resumes from the last one. At the end rank 0 converts the last checkpoint into ``--out/pretrained``, a
``from_pretrained`` directory of plain safetensors in the original layout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.run import main as torchrun
from tqdm.auto import tqdm
from train_tiny import byte_batches

from ming_moe import (
    BailingMoeV2Config,
    BailingMoeV2ForCausalLM,
    ExpertBiasUpdater,
    ParallelLayout,
    build_device_mesh,
    convert_distributed_checkpoint,
    load_distributed_checkpoint,
    save_distributed_checkpoint,
    shard_model,
)


def _checkpoint(out: Path, step: int) -> Path:
    return out / f"checkpoint-{step:06d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expert-parallel", type=int, default=2, help="ranks sharing each layer's experts")
    parser.add_argument("--steps", type=int, default=60, help="total optimizer steps (a resumed run continues)")
    parser.add_argument("--batch", type=int, default=8, help="sequences per rank and step")
    parser.add_argument("--save-every", type=int, default=20, help="steps between checkpoints")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", type=Path, default=Path("runs/ming-moe-distributed"))
    args = parser.parse_args()
    if "RANK" not in os.environ:
        # Started with plain `python` (as `nox -s demo` does): launch the 2 CPU processes torchrun would.
        print("not under torchrun: starting 2 processes with torch.distributed.run --standalone")
        torchrun(["--standalone", "--nproc-per-node", "2", __file__, *sys.argv[1:]])
        return
    torch.set_num_threads(1)

    dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if world % args.expert_parallel:
        raise SystemExit(f"--expert-parallel ({args.expert_parallel}) must divide the world size ({world})")
    device = torch.device(args.device, rank % torch.cuda.device_count()) if args.device == "cuda" else "cpu"
    if args.device == "cuda":
        torch.cuda.set_device(device)
    layout = ParallelLayout(data_parallel=world // args.expert_parallel, expert_parallel=args.expert_parallel)
    mesh = build_device_mesh(layout, args.device)

    torch.manual_seed(0)  # the same initial weights on every rank
    config = BailingMoeV2Config.tiny(router_aux_loss_coef=0.01, bias_update_rate=0.01)
    model = shard_model(BailingMoeV2ForCausalLM(config).to(device).train(), mesh)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    updater = ExpertBiasUpdater(model)  # sums the ranks' loads before each bias update

    progress_file = args.out / "progress.json"  # the step of the last complete checkpoint
    start = 0
    if progress_file.exists():
        start = json.loads(progress_file.read_text())["step"]
        load_distributed_checkpoint(_checkpoint(args.out, start), model, optimizer)
    batches = byte_batches(1000, args.batch, 64, seed=rank)  # each rank its own data
    for _ in range(start):  # the data a resumed run has already seen
        next(batches)

    def save(step: int) -> None:
        save_distributed_checkpoint(_checkpoint(args.out, step), model, optimizer)
        dist.barrier()  # every rank has written its shards: only now is the checkpoint complete
        if rank == 0:
            progress_file.write_text(json.dumps({"step": step}))

    description = f"train dp={layout.data_parallel} ep={args.expert_parallel}"
    bar = tqdm(range(start, args.steps), disable=rank != 0, desc=description)
    for step in bar:
        ids = next(batches).to(device)
        loss = model(ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        updater()
        mean_loss = loss.detach() / world
        dist.all_reduce(mean_loss)
        bar.set_postfix(loss=f"{mean_loss.item():.3f}")
        if (step + 1) % args.save_every == 0:
            save(step + 1)

    final = max(start, args.steps)
    if final % args.save_every:
        save(final)
    if rank == 0:
        pretrained = convert_distributed_checkpoint(_checkpoint(args.out, final), args.out / "pretrained", config)
        print(f"wrote {_checkpoint(args.out, final)} (DCP checkpoint) and {pretrained} (plain safetensors)")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
