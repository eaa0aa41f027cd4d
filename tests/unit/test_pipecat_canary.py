"""Upgrade canary: every place Cadence still relies on pipecat internals, in one list.

Where pipecat has a public route Cadence uses it (VADParamsUpdateFrame, *UpdateSettingsFrame,
trigger_user_turn_started's per-call override, ...). What remains is listed here; a pipecat
upgrade that removes or changes one of these fails this test with a message saying which
Cadence class depends on it and why, before it can fail a user's session.
"""

from __future__ import annotations

import inspect
import re
import textwrap

import pipecat
import pytest
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.pipeline.worker import PipelineWorker
from pipecat.pipeline.worker_observer import WorkerObserver
from pipecat.transports.base_input import BaseInputTransport
from pipecat.turns.eager_end_of_turn_mixin import EagerEndOfTurnSTTServiceMixin
from pipecat.services.piper.tts import PiperTTSService  # the test extra includes piper (GPL): tests only
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator
from pipecat.turns.user_start.base_user_turn_start_strategy import BaseUserTurnStartStrategy
from pipecat.turns.user_stop import EagerUserTurnStopStrategy, ExternalUserTurnStopStrategy

ASSIGN = re.compile(r"self\.(\w+)\s*(?::[^=\n]*)?=(?!=)")

# (pipecat class whose __init__ Cadence skips, the attributes that __init__ sets, Cadence's class, why)
SKIPPED_INITS = [
    (SileroVADAnalyzer, {"_model", "_windows_since_reset", "_low_confidence_windows"},
     "cadence.processors.silero_shared.SharedSileroVADAnalyzer",
     "shares one Silero ONNX session per process instead of loading one per session"),
    (SileroOnnxModel, {"session", "sample_rates"},
     "cadence.processors.silero_shared.SharedSileroVADAnalyzer",
     "builds the model wrapper around the shared session"),
    (LocalSmartTurnAnalyzerV3, {"_log_data", "_session"},
     "cadence.processors.smart_turn.SmartTurnAnalyzer",
     "shares one smart-turn ONNX session per process"),
    (PiperTTSService, {"_voice"},
     "cadence.processors.tts_piper.SharedPiperTTSService",
     "shares one Piper voice per process instead of loading (or downloading) one per session"),
]

# (pipecat class, private member, Cadence's class, why)
PRIVATE_MEMBERS = [
    (BaseSmartTurn, "_stop_ms", "SmartTurnAnalyzer.configure", "stop_secs is read once at construction"),
    (BaseSmartTurn, "_params", "SmartTurnAnalyzer (via the public params property)", "the longest wait"),
    (LocalSmartTurnAnalyzerV3, "_predict_endpoint", "SmartTurnAnalyzer", "a configurable threshold needs the"
     " probability, which only this method sees"),
    (WhisperSTTService, "_load", "cadence.processors.whisper_stt.SharedWhisperSTTService",
     "hands in the process's shared Whisper model instead of loading one per session"),
    (WhisperSTTService, "_model", "SharedWhisperSTTService._load", "where run_stt finds the model"),
    (WhisperSTTService, "_unsupported_language", "SharedWhisperSTTService._load", "keeps pipecat's language check"),
    (SegmentedSTTService, "_handle_user_stopped_speaking", "SharedWhisperSTTService", "an early transcript"
     " is used by trimming the quiet tail off the segment just before pipecat queues it"),
    (SegmentedSTTService, "_audio_buffer", "SharedWhisperSTTService", "the segment heard so far (early start)"),
    (SegmentedSTTService, "_user_speaking", "SharedWhisperSTTService", "only a segment in progress starts early"),
    (SegmentedSTTService, "_trailing_silence", "SharedWhisperSTTService", "the early audio must equal the final"),
    (SimpleTextAggregator, "_check_sentence_with_lookahead", "cadence.processors.clause_aggregator."
     "FirstClauseAggregator", "the per-character hook where a clause boundary can end the first piece"),
    (SimpleTextAggregator, "_text", "FirstClauseAggregator", "the text buffered so far"),
    (TTSService, "_text_aggregator", "cadence.processors.tts_piper.SharedPiperTTSService",
     "TTSService takes no aggregator parameter: the first-clause one replaces it after __init__"),
    (EagerEndOfTurnSTTServiceMixin, "_push_eager_end_of_turn", "cadence.processors.whisper_stt.SharedWhisperSTTService",
     "each transcript is first an eager end of turn (stt eager_end_of_turn)"),
    (EagerEndOfTurnSTTServiceMixin, "_cancel_eager_end_of_turn", "SharedWhisperSTTService", "speech resumed"),
    (EagerEndOfTurnSTTServiceMixin, "_clear_eager_end_of_turn", "SharedWhisperSTTService", "the turn ended"),
    (VADAnalyzer, "_volume_tracker", "cadence.processors.silero_shared.SharedSileroVADAnalyzer",
     "its loudness window starts full of silence, so speech at a session's first instant counts"),
    (EagerUserTurnStopStrategy, "_speculate", "cadence.processors.speculation.AggregatedTextSpeculation",
     "speculates on the text the aggregator will write (its own glues raw transcripts)"),
    (EagerUserTurnStopStrategy, "_speculation", "AggregatedTextSpeculation._speculate", "the speculation in flight"),
    (EagerUserTurnStopStrategy, "_speculation_timeout_task", "AggregatedTextSpeculation._speculate",
     "the clock that withdraws an unresolved speculation"),
    (EagerUserTurnStopStrategy, "_speculation_timeout_handler", "AggregatedTextSpeculation._speculate",
     "the clock that withdraws an unresolved speculation"),
    (ExternalUserTurnStopStrategy, "_handle_transcription", "AggregatedTextSpeculation",
     "where each committed transcript of the turn is seen"),
    (ExternalUserTurnStopStrategy, "_reset", "AggregatedTextSpeculation", "per-turn state is cleared"),
    (TTSService, "_update_settings", "cadence.processors.tts_piper.SharedPiperTTSService",
     "applies Piper's speed from a TTSUpdateSettingsFrame"),
    (TTSService, "_handle_aggregated_text", "SharedPiperTTSService._speak_pending",
     "a steering tag mid-sentence speaks the words before it, as pipecat does at a reply's end"),
    (TTSService, "_aggregated_text_frame", "SharedPiperTTSService._speak_pending", "the frame for flushed text"),
    (VADAnalyzer, "_run_analyzer", "cadence.processors.silero_shared.SharedSileroVADAnalyzer",
     "pipecat's VAD state machine, run per window once the batcher has scored it"),
    (VADAnalyzer, "_vad_buffer", "SharedSileroVADAnalyzer.analyze_audio", "the audio short of a window"),
    (VADAnalyzer, "_vad_frames_num_bytes", "SharedSileroVADAnalyzer.analyze_audio", "a window's size"),
    (SileroVADAnalyzer, "_maybe_reset_model", "SharedSileroVADAnalyzer.voice_confidence",
     "pipecat's periodic model reset, kept"),
    (SileroOnnxModel, "_state", "cadence.processors.silero_shared.SileroBatcher", "a session's recurrent state,"
     " stacked with the others' for one batched run"),
    (SileroOnnxModel, "_context", "SileroBatcher", "the samples of the previous window the model sees first"),
    (SileroOnnxModel, "_last_sr", "SileroBatcher", "a change of rate resets the state"),
    (SileroOnnxModel, "_last_batch_size", "SileroBatcher", "kept as pipecat's own call leaves it"),
    (PipelineWorker, "_observer", "cadence.pipelines.worker.SessionWorker", "replaced with an observer proxy"
     " that spares the observers the user's audio frames"),
    (WorkerObserver, "_observers", "SessionWorker / AudioBlindWorkerObserver", "the observers handed over"),
    (WorkerObserver, "_proxies", "AudioBlindWorkerObserver", "audio frames go only to the observers that ask"),
    (WorkerObserver, "_frames_pushed", "AudioBlindWorkerObserver", "a frame's first push told from the rest"),
    (BaseInputTransport, "_paused", "cadence.transports.realtime.transport.RealtimeInputTransport",
     "audio is pushed on directly, as pipecat's push_audio_frame would queue it, only while not paused"),
]

# Public routes Cadence depends on, checked so a rename is caught here too.
PUBLIC_ROUTES = [
    (BaseUserTurnStartStrategy, "trigger_user_turn_started", "enable_interruptions",
     "cadence.processors.smart_turn.SwitchableVADTurnStart (interrupt_response)"),
]


def _init_assignments(cls: type) -> set[str]:
    return set(ASSIGN.findall(textwrap.dedent(inspect.getsource(cls.__init__))))


def _mentions(cls: type, name: str) -> bool:
    for klass in cls.__mro__:
        if klass.__module__.startswith("pipecat") and name in vars(klass):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if klass.__module__.startswith("pipecat") and re.search(rf"\bself\.{name}\b", source):
            return True
    return False


@pytest.mark.parametrize("cls, expected, user, why", SKIPPED_INITS, ids=lambda v: getattr(v, "__name__", None))
def test_skipped_inits_set_what_cadence_sets(cls, expected, user, why):
    found = _init_assignments(cls)
    assert found == expected, (
        f"pipecat {pipecat.__version__}: {cls.__qualname__}.__init__ now sets {sorted(found)}, not"
        f" {sorted(expected)}. {user} skips that __init__ ({why}) and sets those attributes itself:"
        f" update it (new: {sorted(found - expected)}, gone: {sorted(expected - found)})."
    )


@pytest.mark.parametrize("cls, name, user, why", PRIVATE_MEMBERS, ids=lambda v: v if isinstance(v, str) else None)
def test_private_members_cadence_uses_still_exist(cls, name, user, why):
    assert _mentions(cls, name), (
        f"pipecat {pipecat.__version__} no longer has {cls.__qualname__}.{name}, which {user} relies on ({why})."
    )


@pytest.mark.parametrize("cls, method, parameter, user", PUBLIC_ROUTES)
def test_public_routes_cadence_uses_still_exist(cls, method, parameter, user):
    signature = inspect.signature(getattr(cls, method))
    assert parameter in signature.parameters, f"{cls.__qualname__}.{method} lost {parameter!r}, used by {user}"


def test_the_canary_itself_can_fail():
    assert not _mentions(BaseSmartTurn, "_no_such_member_anywhere")
    assert ASSIGN.findall("self._x = 1\nself._y == 2\nself._z: int = 3") == ["_x", "_z"]
