"""Cadence's built-in processor types, one module each (YAML name = module name).

The YAML layer is handed ``BUILTINS`` (see ``cadence.config``); these modules depend only
on the small stage interface in ``cadence.stages``.
"""

from cadence.processors import backchannel, context, filler, llm, stt, tts, turn, vad

BUILTINS = [vad.SPEC, turn.SPEC, stt.SPEC, context.SPEC, llm.SPEC, filler.SPEC, tts.SPEC, backchannel.SPEC]
