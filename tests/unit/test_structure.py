"""The module map holds: small modules, and imports that only go down (no circles)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "cadence").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the cadence modules it imports anywhere in its body (lazy and TYPE_CHECKING ones too)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert not node.level, f"{path}: use absolute imports"
                base = node.module or ""
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_is_over_the_size_limit():
    big = {str(p.relative_to(SRC)): n for p in _modules().values()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them by concern): {big}"


def test_no_import_circle_between_cadence_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " → ".join(cycle)


def test_processors_and_pipelines_do_not_import_each_other():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("cadence.processors"):
            assert not any(t.startswith("cadence.pipelines") for t in targets), (name, targets)
        if name.startswith("cadence.pipelines"):
            assert not any(t.startswith("cadence.processors") for t in targets), (name, targets)


def test_lower_layers_never_import_higher_ones():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith(("cadence.router", "cadence.stages", "cadence.models")):
            assert not any(t.startswith(("cadence.transports", "cadence.server", "cadence.cli")) for t in targets), \
                (name, targets)
        if name.startswith("cadence.transports.realtime.protocol"):
            assert targets <= {"cadence.transports.realtime"}, (name, targets)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_a_plugin_service_takes_its_role_unless_a_stage_recorded_one():
    from pipecat.processors.frame_processor import FrameProcessor
    from pipecat.services.llm_service import LLMService

    from cadence.pipelines.builder import _record_service_roles
    from cadence.stages import StageRoles

    class EchoLLM(LLMService):
        """A plugin LLM (no model)."""

    plugin, roles = EchoLLM(), StageRoles()
    _record_service_roles(roles, FrameProcessor())
    assert roles.llm is None  # a plain processor takes no role
    _record_service_roles(roles, plugin)
    assert roles.llm is plugin and roles.tts is None and roles.stt is None
    recorded = StageRoles(llm=object())
    _record_service_roles(recorded, plugin)
    assert recorded.llm is not plugin  # what a stage recorded itself wins
