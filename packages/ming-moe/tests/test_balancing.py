"""Hybrid balancing: the bias-update rule, and balancing lowering expert-load imbalance while the LM still learns."""

import torch

from ming_moe import (
    BailingMoeV2Config,
    BailingMoeV2ForCausalLM,
    ExpertBiasUpdater,
    expert_load_statistics,
    load_imbalance,
    random_windows,
    train_causal_lm,
)
from ming_testdata import make_sentences


def test_bias_update_follows_the_sign_rule_per_router(tiny_model):
    block = tiny_model.model.layers[1].mlp
    text_load = torch.arange(16, dtype=torch.float32)  # mean 7.5
    image_load = torch.full((16,), 3.0)  # balanced: no change
    block.expert_load.copy_(torch.stack([text_load, image_load, torch.zeros(16)]))
    ExpertBiasUpdater(tiny_model, rate=0.25)()
    expected = 0.25 * torch.sign(7.5 - text_load)
    torch.testing.assert_close(block.gate.expert_bias, expected)
    assert torch.equal(block.image_gate.expert_bias, torch.zeros(16))
    assert torch.equal(block.audio_gate.expert_bias, torch.zeros(16))
    assert block.expert_load.sum() == 0  # reset after the update
    assert "expert_bias" not in dict(block.gate.named_parameters())  # a buffer, never trained


def test_load_statistics_and_imbalance(tiny_model):
    tiny_model.train()
    tiny_model(torch.randint(0, 512, (2, 8)))
    stats = expert_load_statistics(tiny_model)
    assert set(stats) == {f"model.layers.{i}.mlp" for i in (1, 2, 3)}
    assert stats["model.layers.1.mlp"]["gate"].sum().item() == 16 * 4
    assert load_imbalance(torch.tensor([1.0, 1.0, 1.0, 1.0])) == 1.0
    assert load_imbalance(torch.tensor([4.0, 0.0, 0.0, 0.0])) == 4.0


def _text_batches(seed: int):
    text = " ".join(s.text for s in make_sentences(400, language="en", seed=0)).encode()
    return random_windows(torch.tensor(list(text)), 8, 32, seed)


def test_balancing_lowers_load_imbalance_and_the_lm_still_learns():
    logs = {}
    for balance in (False, True):
        torch.manual_seed(0)
        config = BailingMoeV2Config.tiny(router_aux_loss_coef=0.01, bias_update_rate=0.01)
        logs[balance] = train_causal_lm(
            BailingMoeV2ForCausalLM(config), _text_batches(1), 80, balance=balance, progress=False
        )
    late = {balance: sum(log.imbalance[-20:]) / 20 for balance, log in logs.items()}
    assert late[True] < 0.7 * late[False], late
    for log in logs.values():
        assert sum(log.lm_loss[-10:]) / 10 < sum(log.lm_loss[:10]) / 10 - 1.0
