"""Split models: parts joined in numeric order, verified against a pinned sha256, cached once."""

from __future__ import annotations

import hashlib

import pytest

from cadence import model_parts
from cadence.errors import ConfigError
from cadence.model_parts import SplitModel, joined_model


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Eleven fake part packages (so lexicographic order would put part10 before part2)."""
    monkeypatch.setenv("CADENCE_DATA_DIR", str(tmp_path / "data"))
    blobs = {i: bytes([i]) * (1000 + i) for i in range(1, 12)}
    for i, blob in blobs.items():
        (tmp_path / f"pkg{i}" / "data").mkdir(parents=True)
        (tmp_path / f"pkg{i}" / "data" / f"part{i:02d}.bin").write_bytes(blob)
    whole = b"".join(blobs[i] for i in range(1, 12))
    model = SplitModel("test.gguf", hashlib.sha256(whole).hexdigest(), len(whole),
                       tuple(reversed([(f"pkg{i}", f"data/part{i:02d}.bin") for i in range(1, 12)])),
                       "pkg1..11", "MIT")
    monkeypatch.setitem(model_parts.SPLIT_MODELS, "test-model", model)
    return tmp_path, whole, model


def test_parts_join_in_numeric_order_once(packages):
    root, whole, _ = packages
    find = lambda name: root / name  # noqa: E731
    path = joined_model("test-model", find)
    assert path.read_bytes() == whole and path.with_name("test.gguf.sha256").exists()
    (root / "pkg3" / "data" / "part03.bin").unlink()  # parts are not needed once joined and verified
    assert joined_model("test-model", find) == path


def test_a_missing_part_names_the_package(packages):
    root, _, _ = packages
    with pytest.raises(ConfigError, match="not installed: pkg4"):
        joined_model("test-model", lambda name: None if name == "pkg4" else root / name)


def test_a_wrong_checksum_is_refused_and_nothing_is_kept(packages, monkeypatch):
    root, _, model = packages
    monkeypatch.setitem(model_parts.SPLIT_MODELS, "test-model", SplitModel(
        model.filename, "0" * 64, model.size, model.parts, model.requirement, model.licence))
    with pytest.raises(ConfigError, match="not the pinned"):
        joined_model("test-model", lambda name: root / name)
    assert not list((root / "data" / "models").iterdir())
