"""Router invariants: weights, group limits, the bias's role, fp32 scores."""

import pytest
import torch

from ming_moe import BailingMoeV2Config, GroupLimitedRouter


@pytest.fixture
def router() -> GroupLimitedRouter:
    torch.manual_seed(0)
    config = BailingMoeV2Config.tiny(hidden_size=32, num_experts=32, n_group=8, topk_group=3, num_experts_per_tok=5)
    module = GroupLimitedRouter(config)
    torch.nn.init.normal_(module.weight, std=0.5)
    return module


def test_weights_sum_to_the_scaling_factor(router):
    _, weights, indices = router(torch.randn(200, 32))
    torch.testing.assert_close(weights.sum(-1), torch.full((200,), 2.5))
    assert indices.unique(dim=-1).shape == indices.shape  # distinct experts per token
    assert (weights > 0).all()


def test_chosen_experts_lie_in_the_best_groups(router):
    x = torch.randn(300, 32)
    _, scores = router.scores(x)
    router.expert_bias.copy_(torch.randn(32) * 0.1)
    _, _, indices = router(x)
    biased = (scores + router.expert_bias).view(300, 8, 4)
    group_score = biased.topk(2, dim=-1).values.sum(-1)
    best_groups = group_score.topk(3, dim=-1).indices
    chosen_groups = indices // 4
    for token in range(300):
        assert set(chosen_groups[token].tolist()) <= set(best_groups[token].tolist())
    # the chosen experts are the top-5 biased scores among the kept groups (reference by brute force)
    for token in range(0, 300, 37):
        allowed = [e for e in range(32) if e // 4 in best_groups[token].tolist()]
        ranked = sorted(allowed, key=lambda e: -(scores[token, e] + router.expert_bias[e]).item())
        assert set(indices[token].tolist()) == set(ranked[:5])


def test_bias_changes_the_choice_but_not_the_weight_formula(router):
    x = torch.randn(100, 32)
    _, scores = router.scores(x)
    _, _, before = router(x)
    router.expert_bias[before[0, 0]] = -10.0  # make token 0's first choice unattractive
    _, weights, after = router(x)
    assert before[0, 0].item() not in after[0].tolist()
    expected = scores.gather(1, after)
    expected = expected / expected.sum(-1, keepdim=True) * 2.5
    torch.testing.assert_close(weights, expected)


def test_scores_are_fp32_for_bf16_inputs(router):
    x = torch.randn(10, 32)
    logits, weights, _ = router(x.bfloat16())
    assert logits.dtype == torch.float32
    assert weights.dtype == torch.float32
    reference, _, _ = router(x.bfloat16().float())
    torch.testing.assert_close(logits, reference)
