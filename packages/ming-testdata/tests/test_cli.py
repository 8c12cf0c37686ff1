import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from ming_testdata.cli import main


def read_manifest(out):
    return json.loads((out / "manifest.json").read_text())


def test_images_command_writes_pngs_masks_and_manifest(tmp_path):
    assert main(["images", "--out", str(tmp_path), "--n", "3", "--seed", "1"]) == 0
    manifest = read_manifest(tmp_path)
    assert manifest["kind"] == "images"
    assert manifest["options"]["seed"] == 1
    assert len(manifest["items"]) == 3
    for item in manifest["items"]:
        image = np.asarray(Image.open(tmp_path / item["file"]).convert("RGB"))
        masks = np.load(tmp_path / item["mask_file"])["masks"]
        assert len(masks) == item["count"] == len(item["objects"])
        for mask, obj in zip(masks, item["objects"], strict=True):
            np.testing.assert_array_equal(mask, np.all(image == obj["rgb"], axis=-1))


def test_images_command_makes_text_images(tmp_path):
    assert main(["images", "--kind", "text", "--out", str(tmp_path), "--n", "2", "--width", "200"]) == 0
    manifest = read_manifest(tmp_path)
    assert manifest["kind"] == "text"
    assert all(Image.open(tmp_path / item["file"]).width == 200 and item["text"] for item in manifest["items"])


def test_video_command_writes_npz_with_frames_and_masks(tmp_path):
    assert main(["video", "--out", str(tmp_path), "--n", "2", "--frames", "6", "--fps", "3"]) == 0
    manifest = read_manifest(tmp_path)
    for item in manifest["items"]:
        data = np.load(tmp_path / item["file"])
        assert data["frames"].shape == (6, 64, 64, 3)
        assert float(data["fps"]) == 3.0
        assert data["masks"].shape[:2] == (len(item["objects"]), 6)


@pytest.mark.usefixtures("espeak")
def test_speech_command_writes_float32_wavs(tmp_path):
    assert main(["speech", "--out", str(tmp_path), "--n", "2", "--language", "cmn", "--word-timings"]) == 0
    manifest = read_manifest(tmp_path)
    for item in manifest["items"]:
        rate, audio = wavfile.read(tmp_path / item["file"])
        assert rate == 16000
        assert audio.dtype == np.float32
        assert len(audio) / rate == pytest.approx(item["duration_s"])
        assert item["words"]
        assert item["entities"]


def test_bad_option_exits_with_the_field_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["video", "--out", str(tmp_path), "--n", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "validation error" in err
    assert "\nn\n" in err


def test_module_entry_point_runs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ming_testdata", "images", "--out", str(tmp_path), "--n", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 1 images samples" in result.stdout


def test_speech_command_without_espeak_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SystemExit) as exit_info:
        main(["speech", "--out", str(tmp_path / "out"), "--n", "1"])
    assert exit_info.value.code == 2
    assert "apt-get install espeak-ng" in capsys.readouterr().err
