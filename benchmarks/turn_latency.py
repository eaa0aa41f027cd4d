"""Turn latency of the embedded stack, and the YAML layer's cost against hand-wired pipecat.

Speaks N questions with Piper into one WAV (1.5 s apart), streams it at real time through
a session built from the YAML config, and prints per-stage medians: turn decision and
STT (from the end of speech), LLM first token (from the later of the two), TTS first
audio (from the first token), and voice-to-voice (end of speech → first reply audio
written by the transport). Then runs the same audio through the same processors wired by
hand in Python, alternating the two, and prints the ratio of process CPU time per turn.

    python benchmarks/turn_latency.py --turns 5 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "What is the capital of France?",
    "Tell me something about the ocean.",
    "What do you like to do on weekends?",
    "Can you recommend a good book?",
    "How are you feeling today?",
    "What is your favourite season?",
    "Tell me a short story about a cat.",
    "What makes a good friend?",
]


def spoken_questions(store, n: int, rate: int) -> np.ndarray:
    voice = store.piper_voice("en_US-joe-medium")
    gap = np.zeros(int(rate * 1.5), dtype=np.int16)
    parts = []
    for question in (QUESTIONS * (n // len(QUESTIONS) + 1))[:n]:
        audio = np.concatenate([c.audio_float_array for c in voice.synthesize(question)])
        audio = soxr.resample(audio, voice.config.sample_rate, rate)
        parts += [(np.clip(audio, -1, 1) * 32767).astype(np.int16), gap]
    return np.concatenate(parts)


def hand_wired_factory(yaml_factory, seed: int):
    """The same processors as nova.yaml, constructed directly (no loader, registry or builder)."""
    from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
    from pipecat.audio.vad.vad_analyzer import VADParams
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.processors.audio.vad_processor import VADProcessor
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.services.whisper.stt import WhisperSTTService
    from pipecat.transcriptions.language import Language
    from pipecat.turns.user_start import ExternalUserTurnStartStrategy, VADUserTurnStartStrategy
    from pipecat.turns.user_stop import ExternalUserTurnStopStrategy
    from pipecat.turns.user_turn_processor import UserTurnProcessor
    from pipecat.turns.user_turn_strategies import UserTurnStrategies

    from cadence.stages import Stage
    from cadence.processors.router_llm import RouterLLMService
    from cadence.processors.silero_shared import SharedSileroVADAnalyzer
    from cadence.processors.smart_turn import SmartTurnAnalyzer
    from cadence.processors.tts_piper import SharedPiperTTSService
    from cadence.processors.text_turn import shared_scorer
    from cadence.processors.turn_decision import FusedTurnStopStrategy
    from cadence.processors.whisper_stt import SharedWhisperSTTService

    store, router = yaml_factory.store, yaml_factory.router
    instructions = yaml_factory.config.config.session.instructions
    text_model = yaml_factory.config.params_of("turn").text_model

    def build_stages(context) -> list[Stage]:
        pair = LLMContextAggregatorPair(
            LLMContext(),
            user_params=LLMUserAggregatorParams(
                user_turn_strategies=UserTurnStrategies(
                    start=[ExternalUserTurnStartStrategy()], stop=[ExternalUserTurnStopStrategy(timeout=0.1)]
                )
            ),
        )
        # The file transport follows the context aggregators' events.
        context.roles.user_aggregator, context.roles.assistant_aggregator = pair.user(), pair.assistant()
        analyzer = SmartTurnAnalyzer(
            session=store.smart_turn_session("smart-turn-v3"), threshold=1.0, params=SmartTurnParams()
        )
        vad = SharedSileroVADAnalyzer(session=store.silero_session(), params=VADParams(stop_secs=0.2))
        return [
            Stage(VADProcessor(vad_analyzer=vad)),
            Stage(SharedWhisperSTTService(
                whisper_model=store.whisper("whisper-tiny.en"), beam_size=1, device="cpu", compute_type="int8",
                settings=WhisperSTTService.Settings(model="whisper-tiny.en", language=Language.EN),
                ttfs_p99_latency=0.8, vad_analyzer=vad,
            )),
            Stage(UserTurnProcessor(user_turn_strategies=UserTurnStrategies(
                start=[VADUserTurnStartStrategy()],
                stop=[FusedTurnStopStrategy(analyzer=analyzer, scorer=shared_scorer(store, text_model))],
            ))),
            Stage(pair.user(), tail=[pair.assistant()]),
            Stage(RouterLLMService(router=router, user="user", settings=OpenAILLMService.Settings(
                model=yaml_factory.config.params_of("llm").model, system_instruction=instructions, temperature=0.7,
                top_p=0.95, max_tokens=60, frequency_penalty=0.5, presence_penalty=0.5, seed=seed,
            ))),
            Stage(SharedPiperTTSService(voice=store.piper_voice("en_US-joe-medium"), voice_name="en_US-joe-medium")),
        ]

    class HandWired(type(yaml_factory)):
        def build_stages(self, context):  # noqa: D102 - same signature as the YAML builder
            return build_stages(context)

    hand = HandWired.__new__(HandWired)
    hand.__dict__.update(yaml_factory.__dict__)
    return hand


async def run_once(factory, audio) -> tuple[list, float]:
    from cadence.transports.file import FileConversation

    cpu = time.process_time()
    result = await FileConversation(factory).run_audio(audio)
    return result, time.process_time() - cpu


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def main(args: argparse.Namespace) -> None:
    from loguru import logger

    from cadence.models import ModelStore
    from cadence.config import load_and_validate
    from cadence.pipelines.builder import PipelineFactory

    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    store = ModelStore()
    config = load_and_validate(args.config)
    for stage in config.stages:
        if stage.spec.name == "llm":
            stage.params.seed = args.seed  # same replies in both runs, so CPU time compares like for like
    yaml_factory = PipelineFactory(config, store)
    yaml_factory.prepare()
    hand_factory = hand_wired_factory(yaml_factory, args.seed)
    audio = spoken_questions(store, args.turns, yaml_factory.config.config.transport.audio_in_sample_rate)

    # Warm-up (numba JIT, onnxruntime arenas, the LLM prefix): not measured.
    await run_once(yaml_factory, spoken_questions(store, 1, yaml_factory.config.config.transport.audio_in_sample_rate))

    stages: dict[str, list[float]] = {}
    cpu_per_turn: dict[str, list[float]] = {"yaml": [], "hand": []}
    for round_ in range(args.rounds):
        for name, factory in (("yaml", yaml_factory), ("hand", hand_factory)):
            result, cpu = await run_once(factory, audio)
            turns = [t for t in result.timings if t.first_audio_out is not None]
            cpu_per_turn[name].append(cpu / max(1, len(turns)))
            print(f"round {round_ + 1} {name:<4}: {len(turns)}/{args.turns} turns answered, "
                  f"CPU {cpu / max(1, len(turns)):.2f} s/turn", file=sys.stderr)
            if args.verbose:
                for exchange in result.exchanges:
                    print(f"    you: {exchange.user!r}  nova: {exchange.reply!r}", file=sys.stderr)
            if name == "yaml":
                for turn in turns:
                    for stage, seconds in turn.stage_latencies().items():
                        stages.setdefault(stage, []).append(seconds)

    print(f"\nturn latency, {args.config}, {len(stages.get('voice_to_voice', []))} turns (medians, ms)")
    for stage in ("turn_decision", "stt", "llm_first_token", "tts_first_audio", "voice_to_voice"):
        values = stages.get(stage, [])
        print(f"  {stage:<16} p50 {median(values) * 1000:7.0f}   max {max(values, default=float('nan')) * 1000:7.0f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS         {peak_mb:7.0f} MB")
    yaml_cpu, hand_cpu = median(cpu_per_turn["yaml"]), median(cpu_per_turn["hand"])
    print(f"\nCPU per turn: YAML-built {yaml_cpu:.3f} s, hand-wired {hand_cpu:.3f} s, "
          f"ratio {yaml_cpu / hand_cpu:.3f} (target <= 1.03)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "nova.yaml"))
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="alternating YAML / hand-wired runs")
    parser.add_argument("--seed", type=int, default=7, help="LLM sampling seed for both pipelines")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each exchange")
    asyncio.run(main(parser.parse_args()))
