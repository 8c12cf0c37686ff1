import json
import re

import pytest
import torch
from omni_helpers import noise_image, speech_like
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ming_omni import (
    MingOmniConfig,
    MingOmniForConditionalGeneration,
    load_checkpoint,
    omni_checkpoint_keys,
    omni_checkpoint_shapes,
)


def _image_and_audio(processor):
    content = [{"type": "image", "image": noise_image(56, 56)}, {"type": "audio", "audio": speech_like(0.5)}]
    return processor([{"role": "user", "content": content}])


def _keys(directory):
    keys = set()
    for file in directory.glob("*.safetensors"):
        with safe_open(file, framework="pt") as handle:
            keys |= set(handle.keys())
    return keys


def test_save_then_load_is_bit_identical(model, processor, saved):
    loaded = MingOmniForConditionalGeneration.from_pretrained(saved).eval()
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    assert all(torch.equal(original[k], restored[k]) for k in original)
    inputs = _image_and_audio(processor)
    with torch.no_grad():  # non-persistent buffers (rotary tables, ...) are rebuilt too
        assert torch.equal(model(**inputs.model_kwargs()).logits, loaded(**inputs.model_kwargs()).logits)


# The released checkpoints' names, written out here independently of the library's tables (sources: inclusionAI/Ming
# modeling_bailingmm2.py and config.json for the module names and mlp_depth 2; OpenAI Whisper's encoder names as
# listed from the Ming-flash-omni-2.0 index in vllm-omni's ming_flash_omni audio encoder; the talker's ``model.``).
ORIGINAL_RENAMES = (
    (r"^linear_proj\.fc1\.", "linear_proj.0."),
    (r"^linear_proj\.fc2\.", "linear_proj.2."),
    (r"^audio\.projector_conv\.", "linear_proj_audio.0."),
    (r"^audio\.projector_linear\.", "linear_proj_audio.3."),
    (r"^audio\.encoder\.embed_positions\.weight$", "audio.positional_embedding"),
    (r"^audio\.encoder\.layer_norm\.", "audio.ln_post."),
    (r"^audio\.encoder\.conv([12])\.", r"audio.conv\1."),
    (r"^audio\.encoder\.layers\.(\d+)\.self_attn\.q_proj\.", r"audio.blocks.\1.attn.query."),
    (r"^audio\.encoder\.layers\.(\d+)\.self_attn\.k_proj\.", r"audio.blocks.\1.attn.key."),
    (r"^audio\.encoder\.layers\.(\d+)\.self_attn\.v_proj\.", r"audio.blocks.\1.attn.value."),
    (r"^audio\.encoder\.layers\.(\d+)\.self_attn\.out_proj\.", r"audio.blocks.\1.attn.out."),
    (r"^audio\.encoder\.layers\.(\d+)\.self_attn_layer_norm\.", r"audio.blocks.\1.attn_ln."),
    (r"^audio\.encoder\.layers\.(\d+)\.fc1\.", r"audio.blocks.\1.mlp.0."),
    (r"^audio\.encoder\.layers\.(\d+)\.fc2\.", r"audio.blocks.\1.mlp.2."),
    (r"^audio\.encoder\.layers\.(\d+)\.final_layer_norm\.", r"audio.blocks.\1.mlp_ln."),
    (r"^talker\.backbone\.", "talker.model."),
)


def _original_layout(state):
    """Our state dict in the original layout: the renames above, and the LLM's experts split per expert."""
    tensors = {}
    for name, value in state.items():
        if name.endswith("experts.gate_up_proj"):
            prefix = name.rsplit(".", 1)[0]
            gate, up = value.chunk(2, dim=1)
            for j in range(value.shape[0]):
                tensors[f"{prefix}.{j}.gate_proj.weight"] = gate[j].clone()
                tensors[f"{prefix}.{j}.up_proj.weight"] = up[j].clone()
        elif name.endswith("experts.down_proj"):
            prefix = name.rsplit(".", 1)[0]
            for j in range(value.shape[0]):
                tensors[f"{prefix}.{j}.down_proj.weight"] = value[j].clone()
        else:
            for pattern, replacement in ORIGINAL_RENAMES:
                name = re.sub(pattern, replacement, name)
            tensors[name] = value.clone()
    return tensors


def test_checkpoint_holds_the_original_layout(model, saved):
    keys = _keys(saved)
    assert keys == omni_checkpoint_keys(model.config)
    experts = model.config.llm_config.num_experts
    assert {f"model.model.layers.1.mlp.experts.{j}.gate_proj.weight" for j in range(experts)} <= keys
    assert "model.model.layers.1.mlp.image_gate.weight" in keys
    assert "model.model.layers.1.mlp.experts.gate_up_proj" not in keys
    expected = {
        "vision.blocks.0.attn.qkv.weight",
        "vision.merger.mlp.2.weight",
        "linear_proj.0.weight",
        "linear_proj.2.bias",
        "audio.conv1.weight",
        "audio.positional_embedding",
        "audio.blocks.1.attn.query.weight",
        "audio.blocks.1.attn.key.weight",
        "audio.blocks.1.mlp.2.bias",
        "audio.ln_post.weight",
        "linear_proj_audio.0.weight",
        "linear_proj_audio.3.bias",
        "talker.model.embed_tokens.weight",
        "talker.stop_head.weight",
    }
    assert expected <= keys
    assert "audio.blocks.1.attn.key.bias" not in keys  # Whisper's key projection has no bias
    assert not {k for k in keys if k.startswith(("audio.encoder.", "linear_proj.fc", "talker.backbone."))}
    assert keys == set(_original_layout(model.state_dict()))


@pytest.mark.parametrize("loader", ["from_pretrained", "load_checkpoint"])
def test_checkpoint_written_by_hand_in_the_original_layout_loads(model, processor, tmp_path, loader):
    """Rename our weights with the independent table above, split the experts, and load it bit-identically."""
    save_file(_original_layout(model.state_dict()), tmp_path / "model.safetensors", metadata={"format": "pt"})
    model.config.save_pretrained(tmp_path)
    loaded = MingOmniForConditionalGeneration.from_pretrained(tmp_path) if loader == "from_pretrained" else None
    loaded = loaded or load_checkpoint(tmp_path)
    restored = loaded.state_dict()
    assert restored.keys() == model.state_dict().keys()
    assert all(torch.equal(v, restored[k]) for k, v in model.state_dict().items())
    inputs = _image_and_audio(processor)
    with torch.no_grad():
        assert torch.equal(model(**inputs.model_kwargs()).logits, loaded.eval()(**inputs.model_kwargs()).logits)


def _rewrite(source, target, change):
    target.mkdir()
    (target / "config.json").write_text((source / "config.json").read_text())
    tensors = load_file(source / "model.safetensors")
    change(tensors)
    save_file(tensors, target / "model.safetensors", metadata={"format": "pt"})


def test_missing_weight_is_named(saved, tmp_path):
    _rewrite(saved, tmp_path / "ckpt", lambda t: t.pop("linear_proj.0.weight"))
    with pytest.raises(ValueError, match=r"1 missing \[linear_proj\.0\.weight\]"):
        MingOmniForConditionalGeneration.from_pretrained(tmp_path / "ckpt")


def test_unexpected_weight_is_named(saved, tmp_path):
    _rewrite(saved, tmp_path / "ckpt", lambda t: t.update({"vision.extra.weight": torch.zeros(2)}))
    with pytest.raises(ValueError, match=r"1 unexpected \[vision\.extra\.weight\]"):
        MingOmniForConditionalGeneration.from_pretrained(tmp_path / "ckpt")


def test_mismatched_shape_is_named(saved, tmp_path):
    _rewrite(saved, tmp_path / "ckpt", lambda t: t.update({"linear_proj.0.bias": torch.zeros(3)}))
    with pytest.raises(ValueError, match=r"1 with another shape \[linear_proj\.0\.bias \[3\] \(expected \[64\]\)\]"):
        MingOmniForConditionalGeneration.from_pretrained(tmp_path / "ckpt")


@pytest.mark.parametrize("loader", [MingOmniForConditionalGeneration.from_pretrained, load_checkpoint])
def test_our_module_names_instead_of_the_original_ones_are_named(saved, tmp_path, loader):
    _rewrite(
        saved,
        tmp_path / "ckpt",
        lambda t: t.update({"audio.projector_conv.weight": t.pop("linear_proj_audio.0.weight")}),
    )
    with pytest.raises(
        ValueError, match=r"1 missing \[linear_proj_audio\.0\.weight\], 1 unexpected \[audio\.projector_conv\.weight\]"
    ):
        loader(tmp_path / "ckpt")


def test_only_local_directories_are_read(tmp_path):
    with pytest.raises(ValueError, match="not a local directory"):
        MingOmniForConditionalGeneration.from_pretrained("inclusionAI/Ming-flash-omni-Preview")


def test_bfloat16_loading_runs_a_multimodal_forward(processor, saved):
    loaded = MingOmniForConditionalGeneration.from_pretrained(saved, dtype=torch.bfloat16).eval()
    dtypes = {name: p.dtype for name, p in loaded.named_parameters()}
    routers = {name for name in dtypes if name.endswith(("mlp.gate.weight", "image_gate.weight", "audio_gate.weight"))}
    assert {dtypes[name] for name in routers} == {torch.float32}  # ming-moe keeps router scores in fp32
    assert {dtype for name, dtype in dtypes.items() if name not in routers} == {torch.bfloat16}
    inputs = _image_and_audio(processor).to("cpu", torch.bfloat16)
    with torch.no_grad():
        logits = loaded(**inputs.model_kwargs()).logits
    assert logits.dtype == torch.bfloat16
    assert torch.isfinite(logits).all()


def test_device_map_loading_through_accelerate(model, saved):
    loaded = MingOmniForConditionalGeneration.from_pretrained(saved, device_map="cpu")
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_saved_config_names_the_components(saved):
    config = json.loads((saved / "config.json").read_text())
    assert config["model_type"] == "ming_omni"
    assert config["llm_config"]["model_type"] == "ming_bailing_moe_v2"
    assert config["talker_config"]["model_type"] == "ming_tts_head"


def test_low_memory_loader_is_bit_identical_including_rebuilt_buffers(model, processor, saved):
    loaded = load_checkpoint(saved)
    assert dict(model.named_parameters()).keys() == dict(loaded.named_parameters()).keys()
    assert all(torch.equal(p, loaded.get_parameter(name)) for name, p in model.named_parameters())
    # non-persistent buffers (rotary tables, MoE load counters, ...) are not in the checkpoint: rebuilt equal
    assert all(torch.equal(b, loaded.get_buffer(name)) for name, b in model.named_buffers())
    inputs = processor(
        [{"role": "user", "content": [{"type": "image", "image": noise_image(56, 56)}, {"type": "text", "text": "hi"}]}]
    )
    with torch.no_grad():
        assert torch.equal(model(**inputs.model_kwargs()).logits, loaded(**inputs.model_kwargs()).logits)


def test_low_memory_loader_reads_many_shards(model, tmp_path):
    model.save_pretrained(tmp_path, max_shard_size="200KB")
    assert len(list(tmp_path.glob("*.safetensors"))) > 3
    loaded = load_checkpoint(tmp_path)
    assert all(torch.equal(p, loaded.get_parameter(name)) for name, p in model.named_parameters())


def test_low_memory_loader_names_missing_weights(saved, tmp_path):
    _rewrite(saved, tmp_path / "ckpt", lambda t: t.pop("model.model.layers.2.mlp.experts.3.up_proj.weight"))
    with pytest.raises(ValueError, match=r"1 missing \[model\.model\.layers\.2\.mlp\.experts\.3\.up_proj\.weight\]"):
        load_checkpoint(tmp_path / "ckpt")


def test_low_memory_loader_in_bfloat16_equals_transformers_loader(processor, saved):
    ours = load_checkpoint(saved, dtype=torch.bfloat16)
    reference = MingOmniForConditionalGeneration.from_pretrained(saved, dtype=torch.bfloat16).eval()
    for name, parameter in reference.named_parameters():
        assert ours.get_parameter(name).dtype == parameter.dtype  # fp32 routers stay fp32
        assert torch.equal(ours.get_parameter(name), parameter)
    inputs = _image_and_audio(processor).to("cpu", torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(ours(**inputs.model_kwargs()).logits, reference(**inputs.model_kwargs()).logits)


def test_flash_checkpoint_shapes_follow_the_original_config():
    """Shapes the original config.json implies: Whisper n_ctx 15000 / n_state 1280 / 32 layers, ds_kernel_size 3,
    mlp_depth 2, vision out_hidden_size 8192 into the LLM's 4096."""
    shapes = omni_checkpoint_shapes(MingOmniConfig.flash())
    assert shapes["audio.positional_embedding"] == (15000, 1280)
    assert shapes["audio.blocks.31.attn.query.weight"] == (1280, 1280)
    assert "audio.blocks.32.attn.query.weight" not in shapes
    assert shapes["linear_proj_audio.0.weight"] == (4096, 1280, 3)
    assert shapes["linear_proj_audio.3.weight"] == (4096, 4096)
    assert shapes["linear_proj.0.weight"] == (4096, 8192)
    assert shapes["linear_proj.2.weight"] == (4096, 4096)
    assert shapes["vision.merger.mlp.2.weight"] == (8192, 5120)
    assert shapes["model.model.layers.31.mlp.experts.255.down_proj.weight"] == (4096, 1024)
