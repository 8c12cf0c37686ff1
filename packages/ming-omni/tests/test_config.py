import pytest
import torch
from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig

from ming_contextasr import ContextASRAudioConfig
from ming_moe import BailingMoeV2Config
from ming_omni import MingOmniConfig
from ming_speech_tokenizer import SpeechTokenizerConfig
from ming_tts_head import TTSHeadConfig


def test_flash_composes_the_components_own_flash_presets():
    config = MingOmniConfig.flash()
    assert config.llm_config.to_dict() == BailingMoeV2Config.flash().to_dict()
    assert config.audio_config.to_dict() == ContextASRAudioConfig.flash().to_dict()
    assert config.talker_config.to_dict() == TTSHeadConfig.flash().to_dict()
    assert config.speech_tokenizer_config.to_dict() == SpeechTokenizerConfig.flash().to_dict()
    vision = config.vision_config
    assert isinstance(vision, Qwen2_5_VLVisionConfig)
    assert (vision.depth, vision.hidden_size, vision.num_heads, vision.intermediate_size) == (32, 1280, 16, 3456)
    assert (vision.patch_size, vision.temporal_patch_size, vision.spatial_merge_size) == (14, 2, 2)
    assert (vision.window_size, list(vision.fullatt_block_indexes), vision.out_hidden_size) == (
        112,
        [7, 15, 23, 31],
        8192,
    )
    assert (config.video_fps, config.video_min_frames, config.video_max_frames) == (2.0, 4, 128)


def test_config_round_trips_through_save_pretrained(tmp_path):
    config = MingOmniConfig.tiny()
    config.save_pretrained(tmp_path)
    loaded = MingOmniConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert isinstance(loaded.llm_config, BailingMoeV2Config)
    assert isinstance(loaded.talker_config, TTSHeadConfig)


def test_generation_reads_the_llm_config():
    config = MingOmniConfig.tiny()
    assert config.get_text_config(decoder=True) is config.llm_config


def test_audio_projector_width_must_match_the_llm():
    with pytest.raises(ValueError, match="llm_hidden_size"):
        MingOmniConfig.tiny(audio_config=ContextASRAudioConfig.tiny())  # projects to 96, the tiny LLM is 64 wide


def test_talker_and_tokenizer_latents_must_agree():
    with pytest.raises(ValueError, match="latent_dim"):
        MingOmniConfig.tiny(talker_config=TTSHeadConfig.tiny(vocab_size=512, latent_dim=32))


def test_video_frame_range_is_checked():
    with pytest.raises(ValueError, match="video_min_frames"):
        MingOmniConfig.tiny(video_min_frames=1)
    with pytest.raises(ValueError, match="video_min_frames"):
        MingOmniConfig.tiny(video_min_frames=10, video_max_frames=8)


def test_tiny_model_builds_on_meta_without_memory():
    from ming_omni import MingOmniForConditionalGeneration

    with torch.device("meta"):
        model = MingOmniForConditionalGeneration(MingOmniConfig.tiny())
    assert all(p.device.type == "meta" for p in model.parameters())
