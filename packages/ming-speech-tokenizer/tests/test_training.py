"""The trainer: warm-up then GAN, checkpoints, validation artefacts, exact resume, recipe checks."""

import wave

import pytest
import torch
from pydantic import ValidationError

from ming_speech_tokenizer import SpeechTokenizerConfig, SpeechTokenizerModel, TrainingRecipe, train_speech_tokenizer


def _recipe(tmp_path, **overrides) -> TrainingRecipe:
    values = {
        "output_dir": tmp_path / "run",
        "steps": 6,
        "batch_size": 2,
        "segment_frames": 10,
        "warmup_steps": 2,
        "checkpoint_every": 3,
        "validate_every": 6,
        "plot_clips": 1,
        "progress": False,
    }
    values.update(overrides)
    return TrainingRecipe(**values)


def _fresh_model() -> SpeechTokenizerModel:
    torch.manual_seed(0)
    return SpeechTokenizerModel(SpeechTokenizerConfig.tiny())


class _InterruptedError(Exception):
    pass


def test_resume_after_interruption_continues_the_identical_run(tmp_path, speech):
    straight = train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path / "a"), speech[:2])

    def interrupt(step, losses):
        if step == 5:  # after the checkpoint of step 3: step 4 and 5 are lost and redone
            raise _InterruptedError

    with pytest.raises(_InterruptedError):
        train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path / "b"), speech[:2], callback=interrupt)
    other_start = SpeechTokenizerModel(SpeechTokenizerConfig.tiny())  # its weights are replaced by the checkpoint's
    resumed = train_speech_tokenizer(other_start, speech, _recipe(tmp_path / "b"), speech[:2])
    assert resumed.losses == straight.losses
    assert resumed.validation == straight.validation
    final_a = tmp_path / "a" / "run" / "checkpoint-0000006" / "model.safetensors"
    final_b = tmp_path / "b" / "run" / "checkpoint-0000006" / "model.safetensors"
    assert final_a.read_bytes() == final_b.read_bytes()


def test_warm_up_trains_reconstruction_only_then_the_discriminator_starts(tmp_path, speech):
    log = train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path), speech[:2])
    for name in ("adversarial", "feature_matching", "discriminator"):
        assert log.losses[name][:2] == [0.0, 0.0]
        assert all(value > 0 for value in log.losses[name][2:])
    for step in range(6):
        reconstruction = 15 * log.losses["mel"][step] + 1e-4 * log.losses["kl"][step]
        adversarial = log.losses["adversarial"][step] + log.losses["feature_matching"][step]
        assert log.losses["total"][step] == pytest.approx(reconstruction + adversarial, rel=1e-5)


def test_checkpoints_and_validation_artefacts(tmp_path, speech):
    recipe = _recipe(tmp_path, steps=4, validate_every=2, checkpoint_every=2)
    log = train_speech_tokenizer(_fresh_model(), speech, recipe, speech[:2])
    assert [step for step, _ in log.validation] == [2, 4]
    assert all(distance > 0 for _, distance in log.validation)
    for step in (2, 4):
        checkpoint = recipe.output_dir / f"checkpoint-{step:07d}"
        loaded = SpeechTokenizerModel.from_pretrained(checkpoint)
        assert loaded.config.latent_dim == 64
        folder = recipe.output_dir / "validation" / f"step-{step:07d}"
        assert (folder / "clip-0.png").stat().st_size > 1000
        assert not (folder / "clip-1.png").exists()  # plot_clips=1
        with wave.open(str(folder / "clip-0-reconstruction.wav")) as audio:
            assert audio.getframerate() == 16_000
            assert audio.getnframes() == speech[0].numel()
    assert not list(recipe.output_dir.glob(".partial-*"))


def test_reconstruction_improves_on_a_fixed_clip(tmp_path, speech):
    clip = speech[2][3200 : 3200 + 20 * 320]  # one clip exactly one segment long: every batch is the same
    recipe = _recipe(tmp_path, steps=30, batch_size=1, segment_frames=20, warmup_steps=30, learning_rate=1e-3)
    log = train_speech_tokenizer(_fresh_model(), [clip], recipe)
    first, last = sum(log.losses["mel"][:3]) / 3, sum(log.losses["mel"][-3:]) / 3
    assert last < 0.75 * first


def test_resuming_with_another_recipe_is_refused(tmp_path, speech):
    train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path, steps=1, warmup_steps=0))
    with pytest.raises(ValueError, match="learning_rate"):
        train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path, steps=2, learning_rate=1e-3))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"kl_weight": -1.0}, "kl_weight"),
        ({"mel_bins": (20, 40)}, "mel_bins"),
        ({"mel_windows": (64,), "mel_bins": (80,)}, "mel_bins"),
        ({"warmup": 3}, "warmup"),
    ],
)
def test_bad_recipes_name_the_field(tmp_path, overrides, field):
    with pytest.raises(ValidationError, match=field):
        _recipe(tmp_path, **overrides)


def test_bad_clips_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match=r"clips\[1\] contains NaN"):
        train_speech_tokenizer(
            _fresh_model(), [torch.zeros(4000), torch.full((4000,), float("nan"))], _recipe(tmp_path)
        )
    with pytest.raises(ValueError, match="clips is empty"):
        train_speech_tokenizer(_fresh_model(), [], _recipe(tmp_path))
