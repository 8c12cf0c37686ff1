"""Expert parallelism, FSDP2 + EP training and DCP checkpoints on 2 CPU processes (gloo), against one process.

The 2-rank scenarios run in one pair of spawned workers (starting a process costs more than the scenarios); each test
checks one behaviour on what the workers wrote. One more test trains on 4 ranks, two expert-parallel groups of two.
The references are computed here, in one process, on the same weights.
"""

import datetime
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

from ming_moe import (
    BailingMoeV2Config,
    BailingMoeV2ForCausalLM,
    ExpertBiasUpdater,
    ParallelLayout,
    apply_expert_parallel,
    build_device_mesh,
    convert_distributed_checkpoint,
    load_distributed_checkpoint,
    materialize_model,
    save_distributed_checkpoint,
    shard_model,
)
from ming_videorope import Modality

WORLD = 2
IMPLEMENTATIONS = ("eager", "grouped_mm", "fused_loop")
LAYOUTS = ((2, 1), (1, 2))  # (data parallel, expert parallel); the last one is checkpointed
STEPS = 4
TIMEOUT_S = 600


def _model(seed: int = 0) -> BailingMoeV2ForCausalLM:
    torch.manual_seed(seed)
    return BailingMoeV2ForCausalLM(BailingMoeV2Config.tiny())


def _block_inputs():
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(WORLD, 12, 64, generator=generator)
    router_index = torch.randint(0, 3, (WORLD, 12), generator=generator)
    return x, router_index, torch.randn(WORLD, 12, 64, generator=generator)  # the last: output weights of the loss


def _to_other_rank(block) -> None:
    """Bias every router away from experts 0–7 (rank 0's): all tokens go to rank 1, rank 0 receives none."""
    with torch.no_grad():
        for router in block.routers:
            router.expert_bias[: block.num_experts // 2] = -100.0


def _batches(world: int = WORLD) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(world, 2, 16)``, one batch per rank trained on at every step (so the loss falls), and modality
    ids with text and audio tokens (two routers train)."""
    ids = torch.randint(0, 512, (world, 2, 16), generator=torch.Generator().manual_seed(2))
    modality = torch.full_like(ids, Modality.TEXT)
    modality[..., 4:10] = Modality.AUDIO
    return ids, modality


def _eval_ids() -> torch.Tensor:
    return torch.randint(0, 512, (WORLD, 1, 10), generator=torch.Generator().manual_seed(3))


def _run_block(block, x, router_index, output_weights):
    """Forward (training mode) and backward of the block; returns output, input gradient and parameter gradients."""
    block.zero_grad()
    x = x.clone().requires_grad_()
    out, _, _ = block(x, router_index)
    (out * output_weights).sum().backward()
    grads = {name: getattr(p.grad, "full_tensor", lambda g=p.grad: g)() for name, p in block.named_parameters()}
    return out.detach(), x.grad, grads


def _train(model, optimizer, step_inputs, steps: int = STEPS) -> list[float]:
    """AdamW steps with balancing; ``step_inputs`` lists this process's micro-batches (the same at every step; the
    gradients are averaged over them). Returns the loss of each step, averaged over all processes' micro-batches."""
    updater = ExpertBiasUpdater(model)
    losses = []
    for _ in range(steps):
        total = torch.zeros(2)  # summed losses, micro-batches
        for ids, modality in step_inputs:
            loss = model(ids, labels=ids, modality_ids=modality).loss
            (loss / len(step_inputs)).backward()
            total += torch.stack([loss.detach(), torch.tensor(1.0)])
        if dist.is_initialized():
            dist.all_reduce(total)
        losses.append(float(total[0] / total[1]))
        optimizer.step()
        optimizer.zero_grad()
        updater()
    return losses


def _adamw(model) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=3e-3)


def _gather(tensor: torch.Tensor) -> torch.Tensor:
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor)
    return torch.cat(parts)


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(ids).logits


def _worker(rank: int, scenarios, world: int, directory: str) -> None:
    torch.set_num_threads(1)
    try:
        dist.init_process_group(
            "gloo",
            init_method=f"file://{directory}/rendezvous",
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=120),  # a hung collective fails instead of hanging
        )
        results = scenarios(rank, directory)
        torch.save(results, f"{directory}/results_{rank}.pt")
        dist.destroy_process_group()
    except BaseException:
        with open(f"{directory}/error_{rank}.txt", "w") as handle:
            handle.write(traceback.format_exc())
        raise


def _scenarios(rank: int, directory: str) -> dict:
    results: dict = {}
    # expert-parallel block against the single-process block
    ep_mesh = build_device_mesh(ParallelLayout(expert_parallel=WORLD))["ep"]
    x, router_index, output_weights = _block_inputs()
    mine = slice(rank, rank + 1)
    for case in ("random", "other rank"):
        model = _model()
        block = apply_expert_parallel(model.model.layers[1].mlp, ep_mesh).train()
        if case == "other rank":
            _to_other_rank(block)
        for implementation in IMPLEMENTATIONS:
            model.config._experts_implementation = implementation
            results[case, implementation] = _run_block(block, x[mine], router_index[mine], output_weights[mine])
        block.reset_load()
        block(x[mine], router_index[mine])
        ExpertBiasUpdater(block, rate=0.1)()
        results[case, "bias"] = torch.stack([router.expert_bias for router in block.routers])

    # FSDP2 + EP training of the tiny model; then the same run interrupted after half the steps and resumed from a
    # checkpoint (model + optimizer) in freshly built objects
    ids, modality = _batches()
    my_batch = [(ids[rank], modality[rank])]
    for layout in LAYOUTS:
        mesh = build_device_mesh(ParallelLayout(data_parallel=layout[0], expert_parallel=layout[1]))
        model = shard_model(_model().train(), mesh)
        results[layout] = _train(model, _adamw(model), my_batch)
    first = shard_model(_model().train(), mesh)
    optimizer = _adamw(first)
    results["resumed"] = _train(first, optimizer, my_batch, STEPS // 2)
    save_distributed_checkpoint(f"{directory}/half", first, optimizer)
    second = shard_model(_model(seed=11).train(), mesh)
    optimizer = _adamw(second)
    load_distributed_checkpoint(f"{directory}/half", second, optimizer)
    results["resumed"] += _train(second, optimizer, my_batch, STEPS - STEPS // 2)

    # DCP: save on 2 ranks (the model just trained), load on 2 ranks a checkpoint saved by one process
    save_distributed_checkpoint(f"{directory}/two_ranks", model)
    results["logits two ranks"] = _gather(_logits(model, _eval_ids()[rank]))
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if rank == 0:
        save_file(full, f"{directory}/two_ranks_full.safetensors")
    with torch.device("meta"):  # as at full scale: build on meta, shard, allocate the shards, load
        model = BailingMoeV2ForCausalLM(BailingMoeV2Config.tiny())
    shard_model(model, build_device_mesh(ParallelLayout(expert_parallel=WORLD)))
    load_distributed_checkpoint(f"{directory}/one_rank", materialize_model(model, "cpu"))
    results["logits loaded on two ranks"] = _gather(_logits(model, _eval_ids()[rank]))
    return results


@pytest.fixture(scope="module")
def workers(tmp_path_factory) -> tuple[list[dict], str]:
    directory = tmp_path_factory.mktemp("distributed")
    save_distributed_checkpoint(directory / "one_rank", _model(seed=5))
    return _run_workers(_scenarios, WORLD, directory), str(directory)


def _run_workers(scenarios, world: int, directory) -> list[dict]:
    """``scenarios(rank, directory)`` on ``world`` spawned gloo processes; returns what each returned."""
    context = mp.start_processes(
        _worker, args=(scenarios, world, str(directory)), nprocs=world, join=False, start_method="spawn"
    )
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=TIMEOUT_S)
    try:
        while not context.join(timeout=5):
            if datetime.datetime.now() > deadline:
                pytest.fail(f"distributed workers did not finish in {TIMEOUT_S} s")
    except mp.ProcessRaisedException:
        errors = [p.read_text() for p in sorted(directory.glob("error_*.txt"))]
        pytest.fail("a distributed worker failed:\n" + "\n".join(errors))
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return [torch.load(directory / f"results_{r}.pt") for r in range(world)]


def _reference_block(case: str, implementation: str):
    model = _model()
    model.config._experts_implementation = implementation
    block = model.model.layers[1].mlp.train()
    if case == "other rank":
        _to_other_rank(block)
    return block


@pytest.mark.parametrize("case", ["random", "other rank"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_expert_parallel_forward_and_backward_equal_the_single_process_block(workers, case, implementation):
    results, _ = workers
    out, x_grad, grads = _run_block(_reference_block(case, implementation), *_block_inputs())
    ranks = [r[case, implementation] for r in results]
    torch.testing.assert_close(torch.cat([r[0] for r in ranks]), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([r[1] for r in ranks]), x_grad, atol=1e-5, rtol=1e-5)
    for name, grad in grads.items():
        if ".experts." in f".{name}":  # split across ranks: each rank's full_tensor() holds every expert's gradient
            for r in ranks:
                torch.testing.assert_close(r[2][name], grad, atol=1e-5, rtol=1e-5, msg=name)
        else:  # replicated: each rank's gradient covers its own tokens
            torch.testing.assert_close(sum(r[2][name] for r in ranks), grad, atol=1e-5, rtol=1e-5, msg=name)
    if case == "other rank":  # rank 0 (experts 0–7) received no token, yet took part and got zero gradients
        assert not grads["experts.gate_up_proj"][:8].any()
        assert grads["experts.gate_up_proj"][8:].any()


@pytest.mark.parametrize("case", ["random", "other rank"])
def test_bias_update_sums_the_loads_of_all_ranks(workers, case):
    results, _ = workers
    block = _reference_block(case, "eager")
    x, router_index, _ = _block_inputs()
    block(x, router_index)
    ExpertBiasUpdater(block, rate=0.1)()
    expected = torch.stack([router.expert_bias for router in block.routers])
    for r in results:
        torch.testing.assert_close(r[case, "bias"], expected, atol=0, rtol=0)


def _one_process_losses(world: int = WORLD) -> list[float]:
    """One process, same global batch: the ranks' batches as micro-batches of each step."""
    ids, modality = _batches(world)
    model = _model().train()
    return _train(model, _adamw(model), list(zip(ids, modality, strict=True)))


@pytest.mark.parametrize("layout", LAYOUTS, ids=["dp2-ep1", "dp1-ep2"])
def test_fsdp_and_expert_parallel_training_gives_the_loss_curve_of_one_process(workers, layout):
    results, _ = workers
    expected = _one_process_losses()
    assert expected[-1] < expected[0]
    assert results[0][layout] == results[1][layout]
    torch.testing.assert_close(torch.tensor(results[0][layout]), torch.tensor(expected), atol=2e-5, rtol=0)


def test_training_resumed_from_a_checkpoint_continues_the_same_loss_curve(workers):
    results, _ = workers
    assert results[0]["resumed"] == results[1]["resumed"]
    torch.testing.assert_close(
        torch.tensor(results[0]["resumed"]), torch.tensor(_one_process_losses()), atol=2e-5, rtol=0
    )


def test_checkpoint_saved_on_two_ranks_loads_on_one_with_identical_logits(workers, tmp_path):
    results, directory = workers
    loaded = _model(seed=7)
    load_distributed_checkpoint(f"{directory}/two_ranks", loaded)
    gathered = _model(seed=8)
    gathered.load_state_dict(load_file(f"{directory}/two_ranks_full.safetensors"))
    for name, tensor in gathered.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    logits = _logits(loaded, _eval_ids().flatten(0, 1))
    assert torch.equal(logits, _logits(gathered, _eval_ids().flatten(0, 1)))
    torch.testing.assert_close(results[0]["logits two ranks"], logits, atol=1e-5, rtol=1e-5)
    # and as plain safetensors in the original layout
    plain = BailingMoeV2ForCausalLM.from_pretrained(
        convert_distributed_checkpoint(f"{directory}/two_ranks", tmp_path / "plain", BailingMoeV2Config.tiny())
    )
    assert torch.equal(_logits(plain, _eval_ids().flatten(0, 1)), logits)


def test_checkpoint_saved_on_one_rank_loads_on_two(workers):
    results, _ = workers
    expected = _logits(_model(seed=5), _eval_ids().flatten(0, 1))
    for r in results:
        torch.testing.assert_close(r["logits loaded on two ranks"], expected, atol=1e-5, rtol=1e-5)


def test_loading_a_checkpoint_that_lacks_tensors_is_an_error(tmp_path):
    one_router = BailingMoeV2ForCausalLM(BailingMoeV2Config.tiny(router_modalities=["text"]))
    save_distributed_checkpoint(tmp_path / "one_router", one_router)
    with pytest.raises(
        ValueError, match=r"does not fit the model: Missing key .*: model\.model\.layers\.1\.mlp\.image_gate"
    ):
        load_distributed_checkpoint(tmp_path / "one_router", _model())
    with pytest.raises(ValueError, match="holds no optimizer state"):
        load_distributed_checkpoint(tmp_path / "one_router", one_router, _adamw(one_router))


def _four_rank_scenarios(rank: int, directory: str) -> list[float]:
    ids, modality = _batches(4)
    model = shard_model(_model().train(), build_device_mesh(ParallelLayout(data_parallel=2, expert_parallel=2)))
    return _train(model, _adamw(model), [(ids[rank], modality[rank])])


def test_two_expert_parallel_groups_of_two_on_four_ranks_train_like_one_process(tmp_path):
    # the composed layout: experts split over ep and FSDP-sharded over dp, the rest sharded over all 4 ranks
    results = _run_workers(_four_rank_scenarios, 4, tmp_path)
    assert all(r == results[0] for r in results)
    torch.testing.assert_close(torch.tensor(results[0]), torch.tensor(_one_process_losses(4)), atol=2e-5, rtol=0)
