import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omni_helpers import CORPUS, noise_image, short_and_long, speech_like
from PIL import Image
from pydantic import ValidationError

from ming_omni import MingOmniConfig, MingOmniProcessor, make_tokenizer
from ming_videorope import Modality

_SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_chat_template_is_the_original_format(processor):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ]
    assert processor.render(messages) == (
        "<role>SYSTEM</role>Be brief.\n\ndetailed thinking off<|role_end|>"
        "<role>HUMAN</role>Hi<|role_end|>"
        "<role>ASSISTANT</role>Hello<|role_end|>"
        "<role>HUMAN</role>Bye<|role_end|>"
        "<role>ASSISTANT</role>"
    )


def test_think_mode_switches_the_system_prompt(processor):
    messages = [{"role": "user", "content": "Why?"}]
    assert processor.render(messages, think=True).startswith("<role>SYSTEM</role>detailed thinking on<|role_end|>")
    assert processor.render(messages, think=False).startswith("<role>SYSTEM</role>detailed thinking off<|role_end|>")
    assert not processor.render(messages, add_generation_prompt=False).endswith("<role>ASSISTANT</role>")


def test_media_placeholders_are_wrapped_and_counted(processor):
    audio = speech_like(1.0)
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": noise_image(56, 84)}, {"type": "audio", "audio": audio}],
        }
    ]
    text = processor.render(messages)
    # 56×84 px → 4×6 patches of 14 px → 2×3 merged tokens; 1 s of audio → 25 tokens
    assert "<image>" + "<imagePatch>" * 6 + "</image>" in text
    assert "<audio>" + "<audioPatch>" * 25 + "</audio>" in text


def test_token_ids_equal_tokenizing_the_rendered_prompt(processor, tokenizer):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look: "},
                {"type": "image", "image": noise_image(40, 30)},
                {"type": "text", "text": " a red circle?"},
            ],
        }
    ]
    inputs = processor(messages)
    expected = tokenizer(processor.render(messages), add_special_tokens=False)["input_ids"]
    assert inputs.input_ids[0].tolist() == expected


def test_modality_ids_mark_exactly_the_patch_tokens(processor):
    video = np.stack([noise_image(56, 56, seed=i) for i in range(8)])
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": noise_image(56, 56)},
                {"type": "video", "frames": video, "fps": 2.0},
                {"type": "audio", "audio": speech_like(0.5)},
                {"type": "text", "text": "all three"},
            ],
        }
    ]
    inputs = processor(messages)
    ids, modality = inputs.input_ids[0], inputs.modality_ids[0]
    for token, kind in (
        ("<imagePatch>", Modality.IMAGE),
        ("<framePatch>", Modality.VIDEO),
        ("<audioPatch>", Modality.AUDIO),
    ):
        assert torch.equal(ids == processor.token_ids[token], modality == kind)
    assert int((modality == Modality.VIDEO).sum()) == 4 * 4  # 8 frames at 2 fps → 4 temporal steps × 2×2 tokens


def test_video_of_a_still_image_gives_the_image_patches(processor):
    still = noise_image(84, 56, seed=3)
    image_inputs = processor([{"role": "user", "content": [{"type": "image", "image": still}]}])
    video_inputs = processor([{"role": "user", "content": [{"type": "video", "frames": [still] * 4, "fps": 2.0}]}])
    per_step = image_inputs.pixel_values.shape[0]
    assert video_inputs.video_grid_thw.tolist() == [[2, *image_inputs.image_grid_thw[0, 1:].tolist()]]
    # an image fills the 2-frame temporal patch with itself, so each temporal step of the still video equals it
    assert torch.equal(video_inputs.pixel_values_videos[:per_step], image_inputs.pixel_values)
    assert torch.equal(video_inputs.pixel_values_videos[per_step:], image_inputs.pixel_values)


def test_video_frames_are_folded_into_the_temporal_patch_in_time_order(processor):
    frames = [np.full((28, 28, 3), v, dtype=np.uint8) for v in (0, 255, 0, 255)]
    inputs = processor([{"role": "user", "content": [{"type": "video", "frames": frames, "fps": 2.0}]}])
    patch = inputs.pixel_values_videos[0].view(3, 2, 14 * 14)  # (channel, time, pixels)
    assert (patch[:, 0] < 0).all()
    assert (patch[:, 1] > 0).all()


@pytest.mark.parametrize(
    ("frames", "fps", "sampled", "spacing"),
    [
        (80, 8.0, 20, 2.0),  # 10 s at 2 fps: frames 1 s apart per temporal step → δ = 2
        (8, 8.0, 4, 1.0),  # 1 s: at least 4 frames, 0.25 s apart → δ = 2 · 0.5 s
        (3000, 10.0, 128, 300.0 / 128 * 2 * 2),  # 300 s: at most 128 frames
        (5, 1.0, 4, 5 / 4 * 2 * 2),
    ],
)
def test_videos_are_sampled_at_two_fps_within_the_frame_range(processor, frames, fps, sampled, spacing):
    indices, seconds = processor.sample_video(frames, fps)
    assert len(indices) == sampled
    assert indices[0] == 0
    assert indices[-1] == frames - 1
    assert np.all(np.diff(indices) > 0)
    assert seconds * 2 * 2 == pytest.approx(spacing)  # δ = temporal patch · seconds per frame · 2 positions / s


def test_temporal_spacing_comes_from_the_frame_interval(processor):
    frames = np.stack([noise_image(28, 28, seed=i) for i in range(40)])
    inputs = processor([{"role": "user", "content": [{"type": "video", "frames": frames, "fps": 8.0}]}])
    assert inputs.temporal_spacing.tolist() == [pytest.approx(2.0)]


@_SETTINGS
@given(width=st.integers(8, 200), height=st.integers(8, 200))
def test_image_placeholders_equal_vision_encoder_outputs(processor, model, width, height):
    inputs = processor([{"role": "user", "content": [{"type": "image", "image": noise_image(width, height)}]}])
    with torch.no_grad():
        features = model.image_features(inputs.pixel_values, inputs.image_grid_thw)
    slots = int((inputs.modality_ids == Modality.IMAGE).sum())
    assert features.shape[0] == slots == processor.num_image_tokens(width, height)


@_SETTINGS
@given(frames=st.integers(4, 30), fps=st.sampled_from([1.0, 2.0, 5.0, 12.5, 30.0]), side=st.integers(20, 90))
def test_video_placeholders_equal_vision_encoder_outputs(processor, model, frames, fps, side):
    video = np.stack([noise_image(side, side + 10, seed=i) for i in range(frames)])
    inputs = processor([{"role": "user", "content": [{"type": "video", "frames": video, "fps": fps}]}])
    with torch.no_grad():
        features = model.image_features(inputs.pixel_values_videos, inputs.video_grid_thw)
    slots = int((inputs.modality_ids == Modality.VIDEO).sum())
    assert features.shape[0] == slots == processor.num_video_tokens(frames, fps, side, side + 10)


@_SETTINGS
@given(samples=st.integers(400, 16000 * 4))
def test_audio_placeholders_equal_audio_encoder_outputs(processor, model, samples):
    audio = speech_like(samples / 16000)
    inputs = processor([{"role": "user", "content": [{"type": "audio", "audio": audio}]}])
    with torch.no_grad():
        features = model.audio_features(inputs.audio)
    slots = int((inputs.modality_ids == Modality.AUDIO).sum())
    assert features.shape[0] == slots == processor.num_audio_tokens(audio.numel())


def test_left_padded_batch_rows_equal_single_conversations(processor):
    short, long = short_and_long()
    batch = processor([short, long])
    for row, conversation in enumerate((short, long)):
        alone = processor(conversation)
        n = alone.input_ids.shape[1]
        assert torch.equal(batch.input_ids[row, -n:], alone.input_ids[0])
        assert torch.equal(batch.modality_ids[row, -n:], alone.modality_ids[0])
        assert batch.attention_mask[row].sum() == n
        assert batch.attention_mask[row, -n:].all()


def test_packing_puts_conversations_in_one_row_with_sequence_ids(processor):
    first, second = [{"role": "user", "content": "hi"}], [{"role": "user", "content": "a red circle"}]
    packed = processor([first, second], packing=True)
    a, b = processor(first).input_ids[0], processor(second).input_ids[0]
    assert torch.equal(packed.input_ids[0], torch.cat([a, b]))
    assert packed.sequence_ids[0].tolist() == [0] * len(a) + [1] * len(b)


def test_think_block_is_split_from_the_answer():
    parsed = MingOmniProcessor.parse_response("<think>count the shapes</think>\n\nThree.")
    assert (parsed.thinking, parsed.text) == ("count the shapes", "Three.")
    assert MingOmniProcessor.parse_response("Three.").thinking is None


def test_decode_stops_at_role_end(processor, tokenizer):
    ids = tokenizer("red circle<|role_end|>blue", add_special_tokens=False)["input_ids"]
    assert processor.decode(ids).text == "red circle"


def test_unknown_role_is_rejected_naming_the_field(processor):
    with pytest.raises(ValidationError, match="role"):
        processor([{"role": "robot", "content": "hi"}])


def test_undecodable_image_is_rejected(processor, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(ValidationError, match="cannot decode image"):
        processor([{"role": "user", "content": [{"type": "image", "image": broken}]}])


def test_image_file_paths_are_decoded(processor, tmp_path):
    path = tmp_path / "scene.png"
    Image.fromarray(noise_image(56, 56)).save(path)
    from_file = processor([{"role": "user", "content": [{"type": "image", "image": str(path)}]}])
    from_array = processor([{"role": "user", "content": [{"type": "image", "image": noise_image(56, 56)}]}])
    assert torch.equal(from_file.pixel_values, from_array.pixel_values)


def test_audio_at_another_rate_is_rejected_not_resampled(processor):
    with pytest.raises(ValidationError, match="16000"):
        processor([{"role": "user", "content": [{"type": "audio", "audio": speech_like(1.0), "sample_rate": 8000}]}])


def test_integer_audio_is_rejected(processor):
    pcm = np.zeros(16000, dtype=np.int16)
    with pytest.raises(ValidationError, match="float"):
        processor([{"role": "user", "content": [{"type": "audio", "audio": pcm}]}])


def test_video_without_enough_frames_is_rejected(processor):
    with pytest.raises(ValueError, match="video_min_frames"):
        processor([{"role": "user", "content": [{"type": "video", "frames": [noise_image(28, 28)] * 3, "fps": 2.0}]}])


def test_system_message_must_come_first(processor):
    with pytest.raises(ValueError, match="system"):
        processor([{"role": "user", "content": "hi"}, {"role": "system", "content": "late"}])


def test_conversation_longer_than_the_context_is_rejected(tokenizer):
    config = MingOmniConfig.tiny()
    config.llm_config.max_position_embeddings = 64
    processor = MingOmniProcessor(tokenizer, config)
    with pytest.raises(ValueError, match="context of 64"):
        processor([{"role": "user", "content": [{"type": "audio", "audio": speech_like(3.0)}]}])


def test_tokenizer_without_the_special_tokens_is_rejected(config):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    plain = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()))
    with pytest.raises(ValueError, match="special tokens"):
        MingOmniProcessor(plain, config)


def test_processor_round_trips_through_a_local_directory(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    loaded = MingOmniProcessor.from_pretrained(tmp_path)
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": noise_image(30, 40)}, {"type": "text", "text": "what?"}],
        }
    ]
    assert torch.equal(loaded(messages).input_ids, processor(messages).input_ids)


def test_make_tokenizer_needs_room_for_bytes_and_special_tokens():
    with pytest.raises(ValueError, match="vocab_size"):
        make_tokenizer(CORPUS, vocab_size=100)
