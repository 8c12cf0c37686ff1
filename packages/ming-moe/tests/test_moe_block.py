"""The MoE block: per-modality routing, experts implementations, auxiliary loss and load counts."""

import threading

import pytest
import torch

from ming_moe import BailingMoeV2Config, BailingMoeV2ForCausalLM, SparseMoeBlock
from ming_moe import experts as experts_module
from ming_moe.experts import _CHUNK_SLOTS

FUSED_LOOP_PATHS = (
    "every expert on every token",
    "padded batch",
    "loop on 1 lane",
    "loop on 2 lanes",
    "loop on 3 lanes",
)


def _force_fused_loop_path(monkeypatch, path: str) -> None:
    """Make fused_loop take ``path`` (a :func:`ming_moe.experts.fused_loop_plan` answer) whatever the size."""
    monkeypatch.setattr(experts_module, "fused_loop_plan", lambda *sizes: path)
    lanes = int(path.split()[2]) if path.startswith("loop") else 1
    monkeypatch.setattr(experts_module, "_lane_count", lambda flops: lanes)


def _block(config=None, seed=0) -> SparseMoeBlock:
    torch.manual_seed(seed)
    config = config or BailingMoeV2Config.tiny()
    model = BailingMoeV2ForCausalLM(config)  # initialises the block's weights like the real model
    return model.model.layers[1].mlp


def test_each_modality_is_routed_by_its_own_router():
    block = _block().eval()
    x = torch.randn(2, 12, 64)
    router_index = torch.tensor([[0, 1, 2] * 4, [2, 2, 1, 1, 0, 0] * 2])
    before, _, _ = block(x, router_index)
    with torch.no_grad():
        block.image_gate.weight.add_(torch.randn_like(block.image_gate.weight))
    after, _, _ = block(x, router_index)
    changed = (after - before).abs().amax(-1) > 1e-6
    assert torch.equal(changed, router_index == 1)


def test_single_router_model_is_the_same_model_with_one_modality():
    config = BailingMoeV2Config.tiny()
    three = _block(config).eval()
    one = _block(BailingMoeV2Config.tiny(router_modalities=["text"])).eval()
    one.load_state_dict(
        {k: v for k, v in three.state_dict().items() if "image_gate" not in k and "audio_gate" not in k}
    )
    x = torch.randn(1, 9, 64)
    text_only = torch.zeros(1, 9, dtype=torch.long)
    torch.testing.assert_close(three(x, text_only)[0], one(x, None)[0])
    torch.testing.assert_close(three(x, None)[0], one(x, torch.ones_like(text_only))[0])


@pytest.mark.parametrize(
    "implementation", ["batched_mm", "grouped_mm", *(f"fused_loop: {path}" for path in FUSED_LOOP_PATHS)]
)
def test_experts_implementations_agree_with_eager_forward_and_backward(implementation, monkeypatch):
    if implementation.startswith("fused_loop"):
        _force_fused_loop_path(monkeypatch, implementation.split(": ")[1])
        implementation = "fused_loop"
    torch.manual_seed(0)
    config = BailingMoeV2Config.tiny()
    model = BailingMoeV2ForCausalLM(config)
    x = torch.randint(0, config.vocab_size, (2, 16))
    results = {}
    for name in ("eager", implementation):
        model.set_experts_implementation(name)
        model.zero_grad()
        out = model(x, labels=x)
        out.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results[name] = (out.logits.detach(), grads)
    torch.testing.assert_close(results[implementation][0], results["eager"][0], atol=1e-5, rtol=1e-5)
    assert results["eager"][1].keys() == results[implementation][1].keys()
    for name, grad in results["eager"][1].items():
        torch.testing.assert_close(results[implementation][1][name], grad, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("path", FUSED_LOOP_PATHS)
def test_fused_loop_agrees_with_eager_over_several_chunks_and_an_idle_expert(path, monkeypatch):
    _force_fused_loop_path(monkeypatch, path)
    block = _block().train()
    with torch.no_grad():
        for router in block.routers:
            router.expert_bias[3] = -100.0  # expert 3 is never chosen: its weight gradients must be zeros
    torch.manual_seed(1)
    x = torch.randn(1, 3 * _CHUNK_SLOTS // block.top_k + 5, 64)  # slots for several chunks
    router_index = torch.randint(0, 3, x.shape[:2])
    results = {}
    for name in ("eager", "fused_loop"):
        block.experts.config._experts_implementation = name
        block.zero_grad()
        inputs = x.clone().requires_grad_()
        out, aux_loss, _ = block(inputs, router_index)
        (out.square().sum() + aux_loss).backward()
        grads = {n: p.grad.clone() for n, p in block.named_parameters()}
        results[name] = (out.detach(), inputs.grad, grads)
    torch.testing.assert_close(results["fused_loop"][0], results["eager"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(results["fused_loop"][1], results["eager"][1], atol=1e-5, rtol=1e-5)
    for name, grad in results["eager"][2].items():
        torch.testing.assert_close(results["fused_loop"][2][name], grad, atol=1e-5, rtol=1e-5, msg=name)
    assert not results["fused_loop"][2]["experts.gate_up_proj"][3].any()
    assert not results["fused_loop"][2]["experts.down_proj"][3].any()


@pytest.mark.parametrize("path", FUSED_LOOP_PATHS)
def test_fused_loop_agrees_with_eager_with_an_activation_other_than_silu(path, monkeypatch):
    # SiLU has its own backward in the padded batch; any other activation goes through autograd
    _force_fused_loop_path(monkeypatch, path)
    block = _block(BailingMoeV2Config.tiny(hidden_act="gelu")).train()
    x = torch.randn(1, 300, 64)
    results = {}
    for name in ("eager", "fused_loop"):
        block.experts.config._experts_implementation = name
        block.zero_grad()
        inputs = x.clone().requires_grad_()
        out, aux_loss, _ = block(inputs)
        (out.square().sum() + aux_loss).backward()
        grads = {n: p.grad.clone() for n, p in block.named_parameters() if p.grad is not None}  # one router used
        results[name] = (out.detach(), inputs.grad, grads)
    torch.testing.assert_close(results["fused_loop"][0], results["eager"][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(results["fused_loop"][1], results["eager"][1], atol=1e-5, rtol=1e-5)
    assert results["fused_loop"][2].keys() == results["eager"][2].keys()
    for name, grad in results["eager"][2].items():
        torch.testing.assert_close(results["fused_loop"][2][name], grad, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("path", FUSED_LOOP_PATHS)
def test_fused_loop_inference_with_the_shared_expert_on_the_lanes_agrees_with_eager(path, monkeypatch):
    _force_fused_loop_path(monkeypatch, path)
    shared_rows = []
    shared_expert_rows = experts_module._shared_expert_rows

    def recording(mlp, x, output):
        shared_rows.append(x.shape[0])
        shared_expert_rows(mlp, x, output)

    monkeypatch.setattr(experts_module, "_shared_expert_rows", recording)
    block = _block().eval()
    x = torch.randn(1, 3 * _CHUNK_SLOTS // block.top_k + 5, 64)
    router_index = torch.randint(0, 3, x.shape[:2])
    outputs = {}
    for name in ("eager", "fused_loop"):
        block.experts.config._experts_implementation = name
        with torch.no_grad():
            outputs[name] = block(x, router_index)[0]
    torch.testing.assert_close(outputs["fused_loop"], outputs["eager"], atol=1e-5, rtol=1e-5)
    # the shared expert runs in this thread's buffers on every token once: in the loop's tasks or after the others
    # (the padded batch runs it in its own call)
    assert sum(shared_rows) == (0 if path == "padded batch" else x.shape[1])


def test_aux_loss_uses_only_each_routers_own_tokens():
    block = _block().train()
    x = torch.randn(1, 16, 64)
    router_index = torch.tensor([[0] * 8 + [1] * 8])
    _, aux_text_image, _ = block(x, router_index)
    # the text router's part depends only on the text tokens: perturbing image tokens changes only the image part
    y = x.clone()
    y[0, 8:] += torch.randn(8, 64)
    block.reset_load()
    aux_text, aux_image = (block(x[:, :8], router_index[:, :8])[1], block(x[:, 8:], router_index[:, 8:])[1])
    torch.testing.assert_close(aux_text_image, aux_text + aux_image)
    aux_text_again = block(y[:, :8], router_index[:, :8])[1]
    torch.testing.assert_close(aux_text_again, aux_text)


def test_aux_loss_is_one_when_routing_is_perfectly_balanced():
    block = _block().train()
    n, e, k = 64, block.num_experts, block.top_k
    scores = torch.full((n, e), 0.5)  # equal scores: P_e = 1/E
    indices = (torch.arange(n)[:, None] * k + torch.arange(k)) % e  # every expert gets n·k/E slots
    for group in (None, torch.zeros(n, dtype=torch.long)):  # one router / a router per token
        loss = block._aux_loss(scores, block._slot_counts(indices, group), group)
        torch.testing.assert_close(loss, torch.tensor(1.0))


def test_loads_count_real_tokens_per_router():
    block = _block().train()
    x = torch.randn(2, 10, 64)
    router_index = torch.tensor([[0] * 10, [2] * 6 + [1] * 4])
    token_mask = torch.ones(2, 10, dtype=torch.bool)
    token_mask[0, :3] = False  # padding
    _, _, _ = block(x, router_index, token_mask)
    assert block.expert_load.sum(-1).tolist() == [7 * block.top_k, 4 * block.top_k, 6 * block.top_k]
    block.eval()
    block(x, router_index, token_mask)
    assert block.expert_load.sum().item() == 17 * block.top_k  # not counted outside training


def test_fused_loop_lanes_run_at_once_on_single_threaded_workers(monkeypatch):
    _force_fused_loop_path(monkeypatch, "loop on 2 lanes")
    seen, both_started = [], threading.Barrier(2, timeout=30)
    forward_lane = experts_module._forward_lane

    def recording_lane(*arguments):
        seen.append((threading.get_ident(), torch.get_num_threads()))
        both_started.wait()  # fails unless the two lanes run concurrently
        forward_lane(*arguments)

    monkeypatch.setattr(experts_module, "_forward_lane", recording_lane)
    # a fresh pool under 2 intra-op threads: a lane's first ATen call must not reset it to the caller's count
    monkeypatch.setattr(experts_module._LanePool, "_pools", {})
    block = _block().eval()
    block.experts.config._experts_implementation = "fused_loop"
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            block(torch.randn(1, 64, 64))
        assert torch.get_num_threads() == 2  # the caller's own count is untouched
    finally:
        torch.set_num_threads(threads)
    assert len({ident for ident, _ in seen}) == 2
    assert threading.get_ident() not in {ident for ident, _ in seen}
    assert [count for _, count in seen] == [1, 1]
