"""The flow head: prefix conditioning, history masking, classifier-free guidance in one batched forward."""

import torch

from ming_tts_head import timestep_embedding


def _inputs(config, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    noisy = torch.randn(n, config.patch_size, config.latent_dim, generator=g)
    t = torch.rand(n, generator=g)
    condition = torch.randn(n, config.hidden_size, generator=g)
    history = torch.randn(n, config.history_frames, config.latent_dim, generator=g)
    present = torch.ones(n, config.history_frames, dtype=torch.bool)
    present[0, :5] = False
    return noisy, t, condition, history, present


def test_cfg_scale_one_is_the_conditional_branch_and_zero_the_unconditional(tiny_model, tiny_config):
    head = tiny_model.flow_head
    noisy, t, condition, history, present = _inputs(tiny_config)
    batch_sizes = []
    hook = head.transformer.register_forward_hook(lambda module, args, out: batch_sizes.append(out.shape[0]))
    with torch.no_grad():
        conditional = head(noisy, t, condition, history, present)
        assert torch.equal(head.guided_velocity(noisy, t, condition, history, present, 1.0), conditional)
        hook.remove()
        assert batch_sizes == [3, 3]  # scale 1 skips the unconditional branch
        unconditional = head(noisy, t, head.null_condition.expand_as(condition), history, present)
        assert torch.allclose(
            head.guided_velocity(noisy, t, condition, history, present, 0.0), unconditional, atol=1e-6
        )
        guided = head.guided_velocity(noisy, t, condition, history, present, 2.0)
    assert torch.allclose(guided, unconditional + 2 * (conditional - unconditional), atol=1e-5)
    assert not torch.allclose(conditional, unconditional, atol=1e-4)


def test_batched_cfg_forward_is_one_call_equal_to_two_separate_forwards(tiny_model, tiny_config):
    head = tiny_model.flow_head
    noisy, t, condition, history, present = _inputs(tiny_config)
    batch_sizes = []
    hook = head.transformer.register_forward_hook(lambda module, args, out: batch_sizes.append(out.shape[0]))
    with torch.no_grad():
        guided = head.guided_velocity(noisy, t, condition, history, present, 2.0)
        assert batch_sizes == [6]  # both branches of 3 rows in one forward
        conditional = head(noisy, t, condition, history, present)
        unconditional = head(noisy, t, head.null_condition.expand_as(condition), history, present)
    hook.remove()
    assert torch.allclose(guided, 2 * conditional - unconditional, atol=1e-5)


def test_condition_time_and_history_reach_the_velocity_but_masked_history_does_not(tiny_model, tiny_config):
    head = tiny_model.flow_head
    noisy, t, condition, history, present = _inputs(tiny_config)
    with torch.no_grad():
        base = head(noisy, t, condition, history, present)
        assert not torch.allclose(head(noisy, t, condition + 1, history, present)[1], base[1], atol=1e-4)
        assert not torch.allclose(head(noisy, t.flip(0), condition, history, present)[0], base[0], atol=1e-4)
        changed = history.clone()
        changed[:, :5] += 3.0  # hidden for row 0 only
        moved = head(noisy, t, condition, changed, present)
    assert torch.allclose(moved[0], base[0], atol=1e-6)
    assert not torch.allclose(moved[1], base[1], atol=1e-4)


def test_timestep_embedding_distinguishes_times():
    features = timestep_embedding(torch.tensor([0.0, 0.5, 1.0]))
    assert features.shape == (3, 256)
    assert torch.allclose(features[0, :128], torch.ones(128))  # cos(0)
    assert (features[1] - features[2]).abs().max() > 0.1
