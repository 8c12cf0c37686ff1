"""Parallel layouts at full scale without allocating: the flash preset sharded on `meta` over a fake 64-rank world,
the memory calculator against it, and bad layouts."""

import pytest
import torch
import torch.distributed as dist
from pydantic import ValidationError

from ming_moe import (
    BailingMoeV2Config,
    BailingMoeV2ForCausalLM,
    ExpertParallelExperts,
    ParallelLayout,
    apply_expert_parallel,
    build_device_mesh,
    estimate_memory_per_rank,
    shard_model,
)


@pytest.fixture
def fake_world():
    """Start a process group of ``world_size`` ranks in this process (torch's "fake" backend: collectives do
    nothing), enough to shard on `meta`."""

    def start(world_size: int) -> None:
        dist.init_process_group("fake", store=dist.HashStore(), rank=0, world_size=world_size)

    yield start
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.mark.parametrize(("data_parallel", "expert_parallel"), [(8, 8), (1, 64), (64, 1)])
def test_memory_calculator_matches_the_flash_preset_sharded_on_meta(fake_world, data_parallel, expert_parallel):
    layout = ParallelLayout(data_parallel=data_parallel, expert_parallel=expert_parallel)
    fake_world(layout.world_size)
    config = BailingMoeV2Config.flash()
    with torch.device("meta"):
        model = shard_model(BailingMoeV2ForCausalLM(config), build_device_mesh(layout))
    # rank 0 holds the largest shard of every tensor
    stored = sum(p.to_local().numel() for p in model.parameters())
    layer_units = []
    for layer in model.model.layers:
        dense = sum(p.numel() for name, p in layer.named_parameters() if ".experts." not in f".{name}")
        experts = sum(p.numel() for name, p in layer.named_parameters() if ".experts." in f".{name}")
        layer_units.append(dense + experts // expert_parallel)  # gathered over dp only: this ep rank's experts
    root = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("model.layers."))

    estimate = estimate_memory_per_rank(config, layout)
    assert estimate.sharded_parameter_count == stored
    assert estimate.parameters == 4 * stored  # fp32 master weights
    assert estimate.gradients == 4 * stored
    assert estimate.optimizer_states == 8 * stored  # AdamW: two fp32 moments
    assert estimate.gathered_parameters == 2 * (root + 2 * max(layer_units))  # bf16
    assert estimate.total == 16 * stored + estimate.gathered_parameters
    experts = model.model.layers[1].mlp.experts
    assert isinstance(experts, ExpertParallelExperts) == (expert_parallel > 1)
    assert experts.gate_up_proj.to_local().shape[0] == 256 // layout.world_size
    inference = estimate_memory_per_rank(config, layout, training=False)
    assert (inference.gradients, inference.optimizer_states) == (0, 0)
    assert inference.parameters == estimate.parameters


def test_the_documented_64_rank_layout_fits_an_80_gb_accelerator():
    estimate = estimate_memory_per_rank(BailingMoeV2Config.flash(), ParallelLayout(data_parallel=8, expert_parallel=8))
    assert 20e9 < estimate.total < 40e9


def test_bad_layouts_name_the_field(fake_world):
    with pytest.raises(ValidationError, match="expert_parallel"):
        ParallelLayout(expert_parallel=0)
    with pytest.raises(ValidationError, match="data_parallel"):
        ParallelLayout(data_parallel="two")
    with pytest.raises(ValueError, match=r"expert_parallel \(3\) must divide num_experts \(256\)"):
        estimate_memory_per_rank(BailingMoeV2Config.flash(), ParallelLayout(expert_parallel=3))
    with pytest.raises(RuntimeError, match="not initialised"):
        build_device_mesh(ParallelLayout(expert_parallel=2))
    fake_world(3)
    with pytest.raises(ValueError, match="must equal the world size 3"):
        build_device_mesh(ParallelLayout(expert_parallel=2))
    with torch.device("meta"):
        model = BailingMoeV2ForCausalLM(BailingMoeV2Config.tiny())
    with pytest.raises(ValueError, match=r"num_experts \(16\) must be divisible by the expert-parallel size \(3\)"):
        apply_expert_parallel(model, build_device_mesh(ParallelLayout(expert_parallel=3))["ep"])
