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
    assert manifest["options"]["width"] == 200
    assert len({item["text"] for item in manifest["items"]}) == 2
    for item in manifest["items"]:
        image = np.asarray(Image.open(tmp_path / item["file"]).convert("RGB"))
        assert image.shape[1] == 200
        mask = np.load(tmp_path / item["mask_file"])["mask"]
        np.testing.assert_array_equal(mask, np.all(image == item["rgb"], axis=-1))
        rows, cols = np.nonzero(mask)
        assert item["bbox"] == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def test_video_command_writes_npz_with_frames_and_masks(tmp_path):
    assert main(["video", "--out", str(tmp_path), "--n", "2", "--frames", "6", "--fps", "3"]) == 0
    manifest = read_manifest(tmp_path)
    assert len(manifest["items"]) == 2
    for item in manifest["items"]:
        data = np.load(tmp_path / item["file"])
        frames, masks = data["frames"], data["masks"]
        assert frames.shape == (6, 64, 64, 3)
        assert float(data["fps"]) == item["fps"] == 3.0
        assert len(masks) == len(item["objects"])
        for mask, obj in zip(masks, item["objects"], strict=True):
            np.testing.assert_array_equal(mask, np.all(frames == obj["rgb"], axis=-1))
            for t, box in enumerate(obj["bboxes"]):
                assert (box is None) == (t < obj["appear_frame"]) == (not mask[t].any())


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


def test_bad_option_exits_with_the_field_name_before_writing(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["video", "--out", str(out), "--n", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "validation error" in err
    assert "\nn\n" in err
    assert not out.exists()


def test_a_request_the_maker_cannot_meet_exits_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["images", "--kind", "text", "--out", str(tmp_path), "--width", "16"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("ming-testdata: error: text ")
    assert "does not fit" in err
    assert "Traceback" not in err


def test_a_failing_espeak_exits_with_a_message(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin" / "espeak-ng"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'espeak broke' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    with pytest.raises(SystemExit) as exit_info:
        main(["speech", "--out", str(tmp_path / "out"), "--n", "1"])
    assert exit_info.value.code == 2
    assert "espeak broke" in capsys.readouterr().err


def test_cache_dir_help_names_both_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["speech", "--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "$MING_TESTDATA_CACHE, else ~/.cache/ming-testdata" in help_text


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
