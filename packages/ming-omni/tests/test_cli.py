import json

import numpy as np
import torch
from omni_helpers import speech_like
from PIL import Image

from ming_omni import read_wav, write_wav
from ming_omni.cli import main


def test_inspect_tiny_prints_total_and_active_per_component(capsys):
    assert main(["inspect", "--preset", "tiny", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["LLM (BailingMoeV2)"]["active"] < rows["LLM (BailingMoeV2)"]["total"]
    assert rows["total"]["total"] == sum(r["total"] for name, r in rows.items() if name != "total")


def test_speak_writes_the_spoken_text(saved, omni, tmp_path, capsys):
    out = tmp_path / "hello.wav"
    assert main(["speak", "--model", str(saved), "a red circle", "-o", str(out), "--max-patches", "6"]) == 0
    audio = read_wav(out)
    from ming_tts_head import GenerationOptions

    expected = omni.speak("a red circle", GenerationOptions(max_patches=6, min_patches=6, seed=0))
    assert audio.shape == expected.shape
    assert torch.allclose(audio, expected.clamp(-1, 1), atol=1 / 32767)  # 16-bit rounding


def test_chat_and_transcribe_answer_from_local_files(saved, tmp_path, capsys):
    wav, png = tmp_path / "clip.wav", tmp_path / "scene.png"
    write_wav(wav, speech_like(0.5))
    Image.fromarray(np.zeros((32, 48, 3), dtype=np.uint8)).save(png)
    assert (
        main(
            [
                "chat",
                "--model",
                str(saved),
                "what is it?",
                "--image",
                str(png),
                "--audio",
                str(wav),
                "--max-new-tokens",
                "3",
            ]
        )
        == 0
    )
    assert main(["transcribe", "--model", str(saved), str(wav), "--hotword", "Zorbak", "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.strip()


def test_draw_writes_a_png(saved, tmp_path):
    out = tmp_path / "drawn.png"
    assert main(["draw", "--model", str(saved), "a red circle", "-o", str(out), "--steps", "2"]) == 0
    with Image.open(out) as image:
        assert image.size == (32, 32)


def test_audio_at_another_rate_exits_with_a_message(saved, tmp_path, capsys):
    wav = tmp_path / "8k.wav"
    write_wav(wav, speech_like(0.5)[:4000], sample_rate=8000)
    assert main(["transcribe", "--model", str(saved), str(wav)]) == 2
    assert "8000 Hz, expected 16000 Hz" in capsys.readouterr().err


def test_missing_model_directory_exits_with_a_message(tmp_path, capsys):
    assert main(["speak", "--model", str(tmp_path / "nope"), "hi", "-o", str(tmp_path / "x.wav")]) == 2
    assert "not a local directory" in capsys.readouterr().err


def test_wav_round_trip_is_exact_to_16_bits(tmp_path):
    audio = speech_like(0.25)
    write_wav(tmp_path / "a.wav", audio)
    assert torch.allclose(read_wav(tmp_path / "a.wav"), audio, atol=1 / 32767)
