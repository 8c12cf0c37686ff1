"""The trainer: warm-up then GAN, checkpoints, validation artefacts, exact resume, recipe checks."""

import json
import math
import wave

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ming_speech_tokenizer import (
    SpeechDiscriminator,
    SpeechTokenizerConfig,
    SpeechTokenizerModel,
    TrainingRecipe,
    phase_loss,
    train_speech_tokenizer,
)


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
    # with every optional term and schedule on: all of them must resume exactly too
    options = {
        "final_learning_rate_fraction": 0.5,
        "magnitude_weight": 1.0,
        "phase_weight": 1.0,
        "stft_weight": 1.0,
        "adversarial_every": 2,
    }
    straight = train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path / "a", **options), speech[:2])

    def interrupt(step, losses):
        if step == 5:  # after the checkpoint of step 3: step 4 and 5 are lost and redone
            raise _InterruptedError

    with pytest.raises(_InterruptedError):
        train_speech_tokenizer(
            _fresh_model(), speech, _recipe(tmp_path / "b", **options), speech[:2], callback=interrupt
        )
    other_start = SpeechTokenizerModel(SpeechTokenizerConfig.tiny())  # its weights are replaced by the checkpoint's
    resumed = train_speech_tokenizer(other_start, speech, _recipe(tmp_path / "b", **options), speech[:2])
    assert resumed.losses == straight.losses
    assert resumed.validation == straight.validation
    final_a = tmp_path / "a" / "run" / "checkpoint-0000006" / "model.safetensors"
    final_b = tmp_path / "b" / "run" / "checkpoint-0000006" / "model.safetensors"
    assert final_a.read_bytes() == final_b.read_bytes()


def test_warm_up_trains_reconstruction_only_then_the_discriminator_starts(tmp_path, speech):
    recipe = _recipe(tmp_path, steps=4, checkpoint_every=2)
    log = train_speech_tokenizer(_fresh_model(), speech, recipe)
    for name in ("adversarial", "feature_matching", "discriminator"):
        assert log.losses[name][:2] == [0.0, 0.0]
        assert all(value > 0 for value in log.losses[name][2:])
    torch.manual_seed(recipe.seed)
    initial = SpeechDiscriminator(SpeechTokenizerConfig.tiny()).state_dict()
    during_warm_up = load_file(recipe.output_dir / "checkpoint-0000002" / "discriminator.safetensors")
    after = load_file(recipe.output_dir / "checkpoint-0000004" / "discriminator.safetensors")
    assert set(during_warm_up) == set(initial)
    assert all(torch.equal(during_warm_up[name], initial[name]) for name in initial)
    assert not all(torch.equal(after[name], initial[name]) for name in initial)
    assert log.losses["stft"] == log.losses["phase"] == [0.0] * 4  # off in the default recipe
    for step in range(4):
        reconstruction = 15 * log.losses["mel"][step] + 1e-4 * log.losses["kl"][step]
        adversarial = log.losses["adversarial"][step] + log.losses["feature_matching"][step]
        assert log.losses["total"][step] == pytest.approx(reconstruction + adversarial, rel=1e-5)


def test_the_stft_and_phase_terms_enter_the_total_with_their_weights(tmp_path, speech):
    recipe = _recipe(tmp_path, steps=2, warmup_steps=2, stft_weight=2.0, phase_weight=0.5)
    log = train_speech_tokenizer(_fresh_model(), speech, recipe)
    for step in range(2):
        assert log.losses["stft"][step] > 0
        assert log.losses["phase"][step] > 0
        expected = (
            15 * log.losses["mel"][step]
            + 1e-4 * log.losses["kl"][step]
            + 2 * log.losses["stft"][step]
            + 0.5 * log.losses["phase"][step]
        )
        assert log.losses["total"][step] == pytest.approx(expected, rel=1e-5)
    # without the instantaneous-phase term the same first step (same model, batch and noise) has a smaller phase loss
    recipe = recipe.model_copy(update={"output_dir": tmp_path / "no-ip", "steps": 1, "phase_instantaneous": False})
    relations_only = train_speech_tokenizer(_fresh_model(), speech, recipe)
    assert relations_only.losses["mel"][0] == log.losses["mel"][0]
    assert 0 < relations_only.losses["phase"][0] < log.losses["phase"][0]


def test_the_complex_stft_and_consistency_terms_enter_the_total_with_their_weights(tmp_path, speech):
    recipe = _recipe(
        tmp_path, steps=2, warmup_steps=2, complex_stft_weight=2.0, consistency_weight=0.5, complex_stft_compression=0.5
    )
    log = train_speech_tokenizer(_fresh_model(), speech, recipe)
    for step in range(2):
        assert log.losses["complex_stft"][step] > 0
        assert log.losses["consistency"][step] > 0
        expected = (
            15 * log.losses["mel"][step]
            + 1e-4 * log.losses["kl"][step]
            + 2 * log.losses["complex_stft"][step]
            + 0.5 * log.losses["consistency"][step]
        )
        assert log.losses["total"][step] == pytest.approx(expected, rel=1e-5)
    off = train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path / "off", steps=1, warmup_steps=1))
    assert off.losses["complex_stft"] == off.losses["consistency"] == [0.0]


def test_the_band_energy_term_enters_the_total_with_its_weight_and_is_off_by_default(tmp_path, speech):
    recipe = _recipe(tmp_path, steps=2, warmup_steps=2, band_energy_weight=3.0)
    log = train_speech_tokenizer(_fresh_model(), speech, recipe)
    off = train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path / "off", steps=2, warmup_steps=2))
    assert TrainingRecipe(output_dir=tmp_path, steps=1).band_energy_weight == 0
    # the first step (same model, batch and noise) differs only by the new term; off, the term is 0 and the total
    # is the mel and KL terms alone
    assert log.losses["mel"][0] == off.losses["mel"][0]
    assert log.losses["kl"][0] == off.losses["kl"][0]
    assert log.losses["total"][0] == pytest.approx(off.losses["total"][0] + 3 * log.losses["band_energy"][0], rel=1e-5)
    for step in range(2):
        assert log.losses["band_energy"][step] > 0
        expected = 15 * log.losses["mel"][step] + 1e-4 * log.losses["kl"][step] + 3 * log.losses["band_energy"][step]
        assert log.losses["total"][step] == pytest.approx(expected, rel=1e-5)
        assert off.losses["band_energy"][step] == 0.0
        expected = 15 * off.losses["mel"][step] + 1e-4 * off.losses["kl"][step]
        assert off.losses["total"][step] == pytest.approx(expected, rel=1e-6)
    assert all(off.losses[name] == [0.0, 0.0] for name in ("stft", "complex_stft", "consistency", "magnitude"))


def test_the_pitch_term_enters_the_total_and_needs_a_harmonic_comb(tmp_path, speech):
    torch.manual_seed(0)
    model = SpeechTokenizerModel(SpeechTokenizerConfig.tiny(harmonic_candidates=32))
    log = train_speech_tokenizer(model, speech, _recipe(tmp_path, steps=2, warmup_steps=2, pitch_weight=0.5))
    for step in range(2):
        assert log.losses["pitch"][step] > 0
        expected = 15 * log.losses["mel"][step] + 1e-4 * log.losses["kl"][step] + 0.5 * log.losses["pitch"][step]
        assert log.losses["total"][step] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="harmonic_candidates"):
        train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path / "plain", pitch_weight=0.5))


def test_the_mel_anchor_term_enters_the_total_is_off_by_default_and_needs_an_anchored_model(tmp_path, speech):
    assert TrainingRecipe(output_dir=tmp_path, steps=1).mel_anchor_weight == 0
    torch.manual_seed(0)
    model = SpeechTokenizerModel(SpeechTokenizerConfig.tiny(mel_anchor_bands=64))
    log = train_speech_tokenizer(model, speech, _recipe(tmp_path, steps=2, warmup_steps=2, mel_anchor_weight=2.0))
    for step in range(2):
        assert log.losses["mel_anchor"][step] > 0
        expected = 15 * log.losses["mel"][step] + 1e-4 * log.losses["kl"][step] + 2 * log.losses["mel_anchor"][step]
        assert log.losses["total"][step] == pytest.approx(expected, rel=1e-5)
    off = train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path / "off", steps=1, warmup_steps=1))
    assert off.losses["mel_anchor"] == [0.0]
    assert off.losses["total"][0] == pytest.approx(15 * off.losses["mel"][0] + 1e-4 * off.losses["kl"][0], rel=1e-6)
    with pytest.raises(ValueError, match="mel_anchor_bands"):
        train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path / "plain", mel_anchor_weight=1.0))


def test_the_phase_loss_teaches_the_head_the_phases_of_a_fixed_clip(tmp_path, speech):
    clip = speech[2][3200 : 3200 + 23 * 320]

    def phase_error(model: SpeechTokenizerModel) -> float:
        with torch.no_grad():
            target = model.decoder.head.analyze(clip[None])
            return phase_loss(model(clip[None], sample=False).phase, target.angle(), target.abs()).item()

    errors = {"initial": phase_error(_fresh_model())}
    for name, weight in (("mel only", 0.0), ("with phase loss", 1.0)):
        recipe = _recipe(
            tmp_path / name,
            steps=40,
            batch_size=1,
            segment_frames=20,
            warmup_steps=40,
            learning_rate=1e-3,
            phase_weight=weight,
        )
        model = _fresh_model()
        train_speech_tokenizer(model, [clip], recipe)
        errors[name] = phase_error(model)
    assert errors["with phase loss"] < 0.9 * min(errors["initial"], errors["mel only"])


def test_the_discriminators_run_every_adversarial_every_steps_after_warm_up(tmp_path, speech):
    log = train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path, steps=7, adversarial_every=2))
    for name in ("adversarial", "feature_matching", "discriminator"):
        assert [value > 0 for value in log.losses[name]] == [False, False, True, False, True, False, True]


def test_the_generator_learning_rate_follows_a_cosine_and_the_discriminators_stays(tmp_path, speech):
    recipe = _recipe(tmp_path, steps=4, checkpoint_every=1, learning_rate=1e-3, final_learning_rate_fraction=0.1)
    train_speech_tokenizer(_fresh_model(), speech, recipe)
    for step in range(1, 5):
        state = torch.load(recipe.output_dir / f"checkpoint-{step:07d}" / "trainer_state.pt", weights_only=True)
        # the rate of the step just taken (step − 1 of 4 on the cosine from 1e-3 to 1e-4)
        expected = 1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * (step - 1) / 4))
        assert state["generator_optimizer"]["param_groups"][0]["lr"] == pytest.approx(expected)
        assert state["discriminator_optimizer"]["param_groups"][0]["lr"] == 2e-4


def test_the_learning_rate_ramps_up_linearly_over_its_warm_up_steps_then_follows_the_cosine(tmp_path, speech):
    recipe = _recipe(
        tmp_path, steps=5, checkpoint_every=1, learning_rate=1e-3, final_learning_rate_fraction=0.1,
        learning_rate_warmup_steps=3,
    )  # fmt: skip
    train_speech_tokenizer(_fresh_model(), speech, recipe)
    for step in range(1, 6):
        state = torch.load(recipe.output_dir / f"checkpoint-{step:07d}" / "trainer_state.pt", weights_only=True)
        cosine = 1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * (step - 1) / 5))
        ramp = min(step / 4, 1.0)  # 1/4, 2/4, 3/4 of the cosine on the first three steps
        assert state["generator_optimizer"]["param_groups"][0]["lr"] == pytest.approx(cosine * ramp)


@pytest.mark.parametrize("max_gradient_norm", [None, 0.5])
def test_max_gradient_norm_clips_the_generator_gradient_the_optimizer_sees(tmp_path, speech, max_gradient_norm):
    model = _fresh_model()
    generator_parameters = set(model.parameters())
    norms = []

    def record(optimizer, args, kwargs):
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        if generator_parameters.issuperset(parameters):  # not the discriminators' optimizer
            norms.append(
                torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None])).item()
            )

    handle = register_optimizer_step_pre_hook(record)  # every optimizer the trainer makes
    try:
        train_speech_tokenizer(model, speech, _recipe(tmp_path, steps=3, max_gradient_norm=max_gradient_norm))
    finally:
        handle.remove()
    assert len(norms) == 3
    if max_gradient_norm is None:
        assert min(norms) > 1.0  # raw norms of the untrained model: well above the clip below
    else:
        assert norms == pytest.approx([max_gradient_norm] * 3)


def test_a_run_saved_before_the_optional_terms_existed_resumes_with_their_defaults(tmp_path, speech):
    recipe = _recipe(tmp_path, steps=2, warmup_steps=2, checkpoint_every=1)
    train_speech_tokenizer(_fresh_model(), speech, recipe.model_copy(update={"steps": 1}))
    checkpoint = recipe.output_dir / "checkpoint-0000001"
    saved = json.loads((checkpoint / "recipe.json").read_text())
    added = (
        "stft_weight",
        "stft_resolutions",
        "complex_stft_weight",
        "complex_stft_resolutions",
        "complex_stft_compression",
        "consistency_weight",
        "magnitude_weight",
        "phase_weight",
        "phase_magnitude_weighted",
        "adversarial_every",
        "final_learning_rate_fraction",
        "learning_rate_warmup_steps",
        "max_gradient_norm",
    )
    (checkpoint / "recipe.json").write_text(json.dumps({k: v for k, v in saved.items() if k not in added}))
    state = torch.load(checkpoint / "trainer_state.pt", weights_only=True)
    state["losses"] = {k: v for k, v in state["losses"].items() if k not in ("stft", "magnitude", "phase")}
    torch.save(state, checkpoint / "trainer_state.pt")
    log = train_speech_tokenizer(_fresh_model(), speech, recipe)
    assert len(log.losses["mel"]) == 2
    assert log.losses["phase"] == [0.0, 0.0]


def test_checkpoints_and_validation_artefacts(tmp_path, speech):
    recipe = _recipe(tmp_path, steps=4, validate_every=2, checkpoint_every=2)
    model = _fresh_model()
    global_rng = torch.get_rng_state()
    log = train_speech_tokenizer(model, speech, recipe, speech[:2])
    assert torch.equal(torch.get_rng_state(), global_rng)  # the run draws from its own generators
    assert [step for step, _ in log.validation] == [2, 4]
    assert all(distance > 0 for _, distance in log.validation)
    final = SpeechTokenizerModel.from_pretrained(recipe.output_dir / "checkpoint-0000004").state_dict()
    assert all(torch.equal(tensor, final[name]) for name, tensor in model.state_dict().items())
    for step in (2, 4):
        folder = recipe.output_dir / "validation" / f"step-{step:07d}"
        assert (folder / "clip-0.png").stat().st_size > 1000
        assert not (folder / "clip-1.png").exists()  # plot_clips=1
        with wave.open(str(folder / "clip-0-reconstruction.wav")) as audio:
            assert audio.getframerate() == 16_000
            assert audio.getnframes() == speech[0].numel()
    assert not list(recipe.output_dir.glob(".partial-*"))


def test_keep_last_deletes_older_checkpoints_and_progress_false_is_silent(tmp_path, speech, capfd):
    recipe = _recipe(tmp_path, steps=3, checkpoint_every=1, warmup_steps=3, keep_last=2)
    train_speech_tokenizer(_fresh_model(), speech, recipe)
    assert capfd.readouterr().err == ""  # not even transformers' "Writing model shards" bar
    assert sorted(p.name for p in recipe.output_dir.glob("checkpoint-*")) == [
        "checkpoint-0000002",
        "checkpoint-0000003",
    ]


def test_a_non_finite_loss_stops_the_run_before_any_update_or_checkpoint(tmp_path, speech):
    model = _fresh_model()
    with torch.no_grad():
        model.decoder.head.proj.bias[0] = float("nan")
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with pytest.raises(FloatingPointError, match=r"diverged at step 1: non-finite \{'mel'"):
        train_speech_tokenizer(model, speech, _recipe(tmp_path, checkpoint_every=1))
    assert not list((tmp_path / "run").glob("checkpoint-*"))
    after = model.state_dict()
    assert all(torch.equal(after[name].nan_to_num(), tensor.nan_to_num()) for name, tensor in before.items())


def test_resuming_on_another_device_type_is_refused(tmp_path, speech):
    recipe = _recipe(tmp_path, steps=1, warmup_steps=1)
    train_speech_tokenizer(_fresh_model(), speech, recipe)
    state_file = recipe.output_dir / "checkpoint-0000001" / "trainer_state.pt"
    state = torch.load(state_file, weights_only=True)
    assert state["noise_device"] == "cpu"
    torch.save({**state, "noise_device": "cuda"}, state_file)
    with pytest.raises(ValueError, match="was written on cuda and model is on cpu"):
        train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path, steps=2, warmup_steps=1))


def test_reconstruction_improves_on_a_fixed_clip(tmp_path, speech):
    # one clip exactly one crop long (20 frames + the 3 left out of the loss): every batch is the same
    clip = speech[2][3200 : 3200 + 23 * 320]
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
        ({"betas": (0.9, 1.0)}, "betas"),
        ({"betas": (0.0, 0.99)}, "betas"),
        ({"keep_last": 0}, "keep_last"),
        ({"stft_resolutions": ((256, 512),)}, "stft_resolutions"),
        ({"complex_stft_resolutions": ((256, 512),)}, "complex_stft_resolutions"),
        ({"complex_stft_compression": 0.0}, "complex_stft_compression"),
        ({"adversarial_every": 0}, "adversarial_every"),
        ({"max_gradient_norm": 0.0}, "max_gradient_norm"),
        ({"learning_rate_warmup_steps": -1}, "learning_rate_warmup_steps"),
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


def test_inputs_too_short_for_the_mel_transforms_are_refused_before_training(tmp_path, speech):
    with pytest.raises(ValueError, match=r"segment_frames \(2 = 640 samples\) is too short.*1025 samples"):
        train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path, segment_frames=2))
    with pytest.raises(ValueError, match=r"validation_clips\[1\] has 700 samples.*1025"):
        train_speech_tokenizer(_fresh_model(), speech, _recipe(tmp_path), [speech[0], speech[1][:700]])
    assert not (tmp_path / "run").exists()


def test_with_subframes_the_head_losses_compare_the_head_spectra_with_the_input_in_their_layout(tmp_path, speech):
    torch.manual_seed(0)
    model = SpeechTokenizerModel(SpeechTokenizerConfig.tiny(harmonic_candidates=32, head_subframes=2))
    clip = speech[0][None, : 12 * 320]
    output = model(clip, sample=False)
    target = model.decoder.head.analyze(clip)
    assert output.log_magnitude.shape == output.phase.shape == target.shape == (1, 24, 321)
    assert output.harmonic_logits.shape == (1, 24, 32)
    weights = {"magnitude_weight": 2.0, "phase_weight": 0.5, "pitch_weight": 0.3, "consistency_weight": 0.7}
    log = train_speech_tokenizer(model, speech, _recipe(tmp_path, steps=2, warmup_steps=2, **weights))
    for step in range(2):
        terms = {name.removesuffix("_weight"): weight for name, weight in weights.items()}
        assert all(log.losses[name][step] > 0 for name in terms)
        expected = 15 * log.losses["mel"][step] + 1e-4 * log.losses["kl"][step]
        expected += sum(weight * log.losses[name][step] for name, weight in terms.items())
        assert log.losses["total"][step] == pytest.approx(expected, rel=1e-5)
