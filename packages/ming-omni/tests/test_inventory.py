"""The flash preset's parameter inventory, built on ``meta``, against the components' own counts."""

import pytest
import torch
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

from ming_contextasr import ContextASRAudioConfig, ContextASRAudioModel
from ming_imagegen import flash_components
from ming_moe import BailingMoeV2Config, BailingMoeV2ForCausalLM
from ming_omni import MingOmniConfig, format_inventory, preset_inventory
from ming_speech_tokenizer import SpeechTokenizerConfig, SpeechTokenizerModel
from ming_tts_head import TTSHeadConfig, TTSHeadModel


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def flash():
    return {row.name: row for row in preset_inventory("flash")}


def test_flash_llm_is_103b_with_6_15b_active_as_ming_moe_counts_it(flash):
    llm = flash["LLM (BailingMoeV2)"]
    with torch.device("meta"):
        three_routers = _count(BailingMoeV2ForCausalLM(BailingMoeV2Config.flash()))
        one_router = BailingMoeV2ForCausalLM(BailingMoeV2Config.flash(router_modalities=["text"]))
    routed = sum(p.numel() for name, p in one_router.named_parameters() if ".experts." in name)
    assert llm.total == three_routers
    assert llm.total == pytest.approx(103.0e9, rel=1e-3)
    # one router per token: the active count is the one-router model's (ming-moe's own test: 6.15 B)
    assert llm.active == _count(one_router) - routed * (1 - 8 / 256)
    assert llm.active == pytest.approx(6.15e9, rel=5e-3)


def test_flash_encoders_and_heads_match_the_components_built_alone(flash):
    config = MingOmniConfig.flash()
    with torch.device("meta"):
        vision = _count(Qwen2_5_VisionTransformerPretrainedModel._from_config(config.vision_config))
        audio = _count(ContextASRAudioModel(ContextASRAudioConfig.flash()))
        talker = _count(TTSHeadModel(TTSHeadConfig.flash()))
        speech = _count(SpeechTokenizerModel(SpeechTokenizerConfig.flash()))
        image = {name: _count(m) for name, m in flash_components().items() if isinstance(m, torch.nn.Module)}
    assert flash["vision tower (Qwen2.5-VL)"].total == vision
    assert flash["vision projector"].total == 8192 * 4096 + 4096 + 4096 * 4096 + 4096
    assert flash["audio encoder + projector (Whisper)"].total == audio
    assert flash["talker (TTS head)"].total == talker
    assert flash["speech tokenizer"].total == speech
    for name, count in image.items():
        assert flash[f"image generator: {name}"].total == count
    assert flash["image generator: transformer"].total == pytest.approx(2.4e9, rel=0.02)
    assert flash["total"].total == sum(r.total for n, r in flash.items() if n != "total")
    for name, row in flash.items():
        if not name.startswith(("LLM", "total")):
            assert row.active == row.total  # dense parts


def test_inventory_table_lists_every_component(flash):
    table = format_inventory(list(flash.values()))
    assert "102.955B" in table
    assert "6.152B" in table
    assert len(table.splitlines()) == len(flash) + 2  # header and rule
