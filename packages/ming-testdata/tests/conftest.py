import shutil
from pathlib import Path

import pytest


@pytest.fixture
def espeak() -> None:
    """Fail, with the install command, where espeak-ng is missing: the speech makers are part of what is tested."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng, or run `bash .ci/setup`)")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache, so none reads audio another one made (or writes to ~/.cache)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("MING_TESTDATA_CACHE", str(path))
    return path
