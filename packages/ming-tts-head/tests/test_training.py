"""The trainer: the loss falls on a tiny synthetic latent set, checkpoints, exact resume, recipe and data checks."""

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from ming_tts_head import TrainingRecipe, TTSHeadConfig, TTSHeadModel, collate_examples, train_tts_head


def _examples(n: int, seed: int = 0) -> list[tuple[list[int], torch.Tensor]]:
    """A toy language: token t is spoken as 2 + t % 3 frames of its own fixed latent vector."""
    g = torch.Generator().manual_seed(seed)
    sounds = torch.randn(16, 64, generator=torch.Generator().manual_seed(123))
    examples = []
    for _ in range(n):
        text = torch.randint(0, 16, (int(torch.randint(2, 6, (1,), generator=g)),), generator=g).tolist()
        latents = torch.cat([sounds[t].expand(2 + t % 3, 64) for t in text])
        examples.append((text, latents))
    return examples


def _recipe(tmp_path, **overrides) -> TrainingRecipe:
    values = {"output_dir": tmp_path / "run", "steps": 6, "batch_size": 4, "checkpoint_every": 3, "progress": False}
    values.update(overrides)
    return TrainingRecipe(**values)


def _fresh() -> TTSHeadModel:
    torch.manual_seed(0)
    return TTSHeadModel(TTSHeadConfig.tiny())


def _held_out_loss(model, examples) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        out = model(**collate_examples(examples), generator=torch.Generator().manual_seed(0))
    return out.flow_loss.item(), out.stop_loss.item()


def test_loss_goes_down_on_a_tiny_synthetic_latent_dataset(tmp_path):
    model = _fresh()
    train, held_out = _examples(64), _examples(16, seed=1)
    flow_before, stop_before = _held_out_loss(model, held_out)
    recipe = _recipe(tmp_path, steps=120, batch_size=8, learning_rate=2e-3, checkpoint_every=120)
    log = train_tts_head(model, train, recipe)
    flow_after, stop_after = _held_out_loss(model, held_out)  # held-out texts, 120 steps: 1.86 → 0.93, 0.81 → 0.21
    assert len(log.losses["total"]) == 120
    assert sum(log.losses["total"][-10:]) < 0.6 * sum(log.losses["total"][:10])
    assert flow_after < 0.7 * flow_before
    assert stop_after < 0.5 * stop_before
    assert not model.training


class _InterruptedError(Exception):
    pass


def test_resume_after_interruption_continues_the_identical_run(tmp_path):
    data = _examples(12)
    straight = train_tts_head(_fresh(), data, _recipe(tmp_path / "a"))

    def interrupt(step, losses):
        if step == 5:  # after the checkpoint of step 3: steps 4 and 5 are lost and redone
            raise _InterruptedError

    with pytest.raises(_InterruptedError):
        train_tts_head(_fresh(), data, _recipe(tmp_path / "b"), callback=interrupt)
    assert sorted(p.name for p in (tmp_path / "b" / "run").iterdir()) == ["checkpoint-0000003"]
    resumed = train_tts_head(TTSHeadModel(TTSHeadConfig.tiny()), data, _recipe(tmp_path / "b"))
    assert resumed.losses == straight.losses
    final_a = tmp_path / "a" / "run" / "checkpoint-0000006" / "model.safetensors"
    final_b = tmp_path / "b" / "run" / "checkpoint-0000006" / "model.safetensors"
    assert final_a.read_bytes() == final_b.read_bytes()
    loaded = TTSHeadModel.from_pretrained(final_a.parent)
    assert loaded.config.patch_size == 4


def test_a_changed_recipe_is_not_resumed(tmp_path):
    data = _examples(8)
    train_tts_head(_fresh(), data, _recipe(tmp_path, steps=3))
    longer = train_tts_head(_fresh(), data, _recipe(tmp_path, steps=4))  # steps may grow
    assert len(longer.losses["total"]) == 4
    with pytest.raises(ValueError, match="learning_rate"):
        train_tts_head(_fresh(), data, _recipe(tmp_path, steps=5, learning_rate=1e-2))
    with pytest.raises(ValueError, match=r"recipe\.steps=2 .* at step 4"):
        train_tts_head(_fresh(), data, _recipe(tmp_path, steps=2))
    torch.manual_seed(0)
    other = TTSHeadModel(TTSHeadConfig.tiny(history_frames=4, stop_loss_weight=0.5))
    with pytest.raises(ValueError, match=r"model\.config differs .* \['history_frames', 'stop_loss_weight'\]"):
        train_tts_head(other, data, _recipe(tmp_path, steps=5))


def test_resuming_accepts_another_spelling_of_the_output_dir_and_keep_last_prunes(tmp_path):
    data = _examples(8)
    train_tts_head(_fresh(), data, _recipe(tmp_path, steps=3, checkpoint_every=1))
    assert [p.name for p in sorted((tmp_path / "run").iterdir())] == [f"checkpoint-000000{i}" for i in (1, 2, 3)]
    elsewhere = tmp_path / "somewhere" / ".." / "run"
    log = train_tts_head(
        _fresh(), data, _recipe(tmp_path, output_dir=elsewhere, steps=5, checkpoint_every=1, keep_last=2)
    )
    assert len(log.losses["total"]) == 5
    assert [p.name for p in sorted((tmp_path / "run").iterdir())] == ["checkpoint-0000004", "checkpoint-0000005"]


def test_resuming_checks_the_checkpoint_weights_strictly(tmp_path):
    data = _examples(8)
    train_tts_head(_fresh(), data, _recipe(tmp_path, steps=3))
    path = tmp_path / "run" / "checkpoint-0000003" / "model.safetensors"
    weights = load_file(path)
    weights["extra"] = weights.pop("stop_head.bias")
    save_file(weights, path, metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"missing \['stop_head\.bias'\], unexpected \['extra'\]"):
        train_tts_head(_fresh(), data, _recipe(tmp_path, steps=4))


def test_bad_data_and_recipes_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="examples is empty"):
        train_tts_head(_fresh(), [], _recipe(tmp_path))
    with pytest.raises(ValueError, match=r"examples\[1\]\.latents"):
        train_tts_head(_fresh(), [([1], torch.zeros(3, 64)), ([1], torch.zeros(3, 32))], _recipe(tmp_path))
    with pytest.raises(ValueError, match=r"examples\[0\]\.text_ids is empty"):
        train_tts_head(_fresh(), [([], torch.zeros(3, 64))], _recipe(tmp_path))
    with pytest.raises(ValueError, match=r"examples\[0\]\.text_ids must be in \[0, vocab_size=256\)"):
        train_tts_head(_fresh(), [([256], torch.zeros(3, 64))], _recipe(tmp_path))
    with pytest.raises(ValidationError, match="batch_size"):
        _recipe(tmp_path, batch_size=0)
    for betas in ((0.0, 0.9), (0.9, 1.0)):
        with pytest.raises(ValidationError, match="betas"):
            _recipe(tmp_path, betas=betas)


def test_collate_pads_on_the_right():
    batch = collate_examples([([1, 2, 3], torch.ones(5, 64)), ([4], torch.ones(1, 2, 64))])
    assert batch["text_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["text_lengths"].tolist() == [3, 1]
    assert batch["latents"].shape == (2, 5, 64)
    assert batch["latent_lengths"].tolist() == [5, 2]
    assert batch["latents"][1, 2:].abs().sum() == 0


def test_the_log_records_the_regression_loss_of_a_model_with_that_head(tmp_path):
    torch.manual_seed(0)
    model = TTSHeadModel(TTSHeadConfig.tiny(regression_loss_weight=0.5))
    log = train_tts_head(model, _examples(8), _recipe(tmp_path, steps=3))
    assert len(log.losses["regression"]) == 3
    for total, flow, stop, regression in zip(
        *(log.losses[k] for k in ("total", "flow", "stop", "regression")), strict=True
    ):
        assert total == pytest.approx(flow + stop + 0.5 * regression, rel=1e-5)
    assert "regression" not in train_tts_head(_fresh(), _examples(8), _recipe(tmp_path / "plain", steps=1)).losses
