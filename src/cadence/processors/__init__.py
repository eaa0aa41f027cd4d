"""Cadence's built-in processor types, one module each (YAML name = module name)."""

from cadence.processors import context, llm, stt, tts, turn, vad

BUILTINS = [vad.SPEC, turn.SPEC, stt.SPEC, context.SPEC, llm.SPEC, tts.SPEC]

# Work a stage needs once per process (load a model, prefill a prompt), keyed by type.
WARMERS = {"llm": llm.warm}
