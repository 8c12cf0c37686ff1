"""Schedules and the Euler sampler: the paper's EPSS times, sway, exact integration of known velocity fields."""

import pytest
import torch

from ming_tts_head import euler_sample, flow_timesteps, sway


def test_epss_10_steps_is_the_papers_schedule():
    expected = torch.tensor([0, 2, 4, 6, 8, 12, 16, 20, 24, 28, 32]) / 32
    assert torch.equal(flow_timesteps(10), expected.float())


def test_uniform_and_errors():
    assert torch.allclose(flow_timesteps(4, "uniform"), torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    with pytest.raises(ValueError, match="steps"):
        flow_timesteps(3, "epss")
    with pytest.raises(ValueError, match="schedule"):
        flow_timesteps(4, "cosine")


@pytest.mark.parametrize("coefficient", [-1.0, -0.5, 0.5, 1.0])
def test_sway_keeps_the_ends_and_the_order(coefficient):
    warped = flow_timesteps(10, sway_coefficient=coefficient)
    assert warped[0].item() == pytest.approx(0.0, abs=1e-7)
    assert warped[-1].item() == pytest.approx(1.0, abs=1e-6)
    assert bool((warped.diff() > 0).all())
    if coefficient < 0:  # towards the noise end
        assert bool((warped[1:-1] < flow_timesteps(10)[1:-1]).all())
    assert torch.allclose(sway(torch.tensor([0.5]), 0.0), torch.tensor([0.5]))


def test_sway_with_minus_one_is_one_minus_cosine():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(sway(t, -1.0), 1 - torch.cos(torch.pi * t / 2), atol=1e-7)
    assert sway(torch.tensor([0.5]), -1.0).item() == pytest.approx(1 - 2**-0.5, abs=1e-7)


@pytest.mark.parametrize(
    ("steps", "schedule", "coefficient"), [(10, "epss", None), (10, "epss", -1.0), (3, "uniform", None)]
)
def test_euler_reaches_a_point_mass_exactly(steps, schedule, coefficient):
    # rectified flow towards a single data point x*: v(x, t) = (x* − x) / (1 − t); every Euler step keeps the
    # trajectory on the straight line, so any schedule ending at t = 1 lands on x*.
    target = torch.randn(3, 4, 8, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(3, 4, 8, generator=torch.Generator().manual_seed(1))
    calls = []

    def velocity(x, t):
        calls.append(t)
        return (target - x) / (1 - t)[:, None, None]

    out = euler_sample(velocity, noise, flow_timesteps(steps, schedule, coefficient))
    assert torch.allclose(out, target, atol=1e-5)
    assert len(calls) == steps
    assert all(t.shape == (3,) for t in calls)


def test_euler_evaluates_the_left_point_of_each_step_on_a_linear_field():
    # v(x, t) = a + b·t: left-point Euler gives x(0) + a + b·Σ t_i Δt_i (the left Riemann sum, not the exact
    # integral a + b / 2), which pins where the velocity is evaluated.
    a, b = torch.randn(2, 5), torch.randn(2, 5)
    times = flow_timesteps(10)
    out = euler_sample(lambda x, t: a + b * t[:, None], torch.zeros(2, 5), times)
    riemann = (times[:-1] * times.diff()).sum()
    assert torch.allclose(out, a + b * riemann, atol=1e-6)
    assert not torch.allclose(out, a + b / 2, atol=1e-3)
    constant = euler_sample(lambda x, t: a, torch.ones(2, 5), times)
    assert torch.allclose(constant, 1 + a, atol=1e-6)
