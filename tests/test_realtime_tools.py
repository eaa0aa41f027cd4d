"""Client-run tools over Realtime with the openai SDK: the call as a function_call item, the
client's function_call_output, and the model's answer using it. The model is the scripted
tool-calling backend double (``fake_backend``'s ``/tools``), so the protocol test does not
depend on a small model's whims; the embedded model's own tool calls are tested in
test_router_tools.py and with openai-agents below."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner
from openai import AsyncOpenAI

import fake_backend
from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from servers import closed_port, serving
from test_clients_in_the_wild import AgentEvents
from test_realtime import collect

WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def served(store, mode: str = "tools", stages: list[dict] | None = None, tools: dict | None = None):
    """A Cadence on the scripted backend double's ``mode`` (context, llm, then ``stages``), with
    the YAML ``tools``; yields its ws:// base."""
    async with serving(fake_backend.app) as fake:
        config = {"router": {"providers": {"fake": {"kind": "openai", "base_url": f"{fake}/{mode}/v1"}}},
                  "tools": tools or {}, "pipeline": [{"type": "context"}, {"type": "llm", "model": "fake/m"},
                                                     *(stages or [])]}
        factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
        async with serving(create_app(factory)) as base:
            yield base.replace("http://", "ws://")


def _scripted(stages: list[dict]):
    async def serve(store):
        async for base in served(store, stages=stages):
            yield base
    return pytest.fixture(scope="module")(serve)


url = _scripted([])  # text replies
spoken_url = _scripted([{"type": "tts"}])  # spoken replies, as openai-agents asks for


def client(url: str) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="unused", websocket_base_url=f"{url}/v1")


async def ask(conn, text: str) -> list:
    await conn.conversation.item.create(item={"type": "message", "role": "user",
                                              "content": [{"type": "input_text", "text": text}]})
    await conn.response.create()
    return await collect(conn)


def of(events, kind):
    return [e for e in events if e.type == kind]


async def test_a_client_tool_round_trip(url):
    async with client(url).realtime.connect(model="fake/m") as conn:
        await conn.session.update(session={"type": "realtime", "tools": [WEATHER], "tool_choice": "auto"})
        updated = await collect(conn, "session.updated")
        assert updated[-1].session.tools[0].name == "get_weather"
        events = await ask(conn, "What's the weather in Paris?")
        (done,) = of(events, "response.done")
        assert done.response.status == "completed"
        message, call = done.response.output
        assert message.type == "message" and message.content[0].text == "Let me check."  # spoken text is kept
        assert call.type == "function_call" and call.name == "get_weather" and call.status == "completed"
        assert json.loads(call.arguments) == {"city": "Paris"} and call.call_id
        (args_done,) = of(events, "response.function_call_arguments.done")
        assert (args_done.call_id, args_done.item_id, args_done.arguments) == (call.call_id, call.id, call.arguments)
        assert "".join(e.delta for e in of(events, "response.function_call_arguments.delta")) == call.arguments
        assert [e.item.type for e in of(events, "response.output_item.added")] == ["message", "function_call"]
        assert fake_backend.calls[-1]["tools"][0]["function"]["name"] == "get_weather"

        await conn.conversation.item.create(item={"type": "function_call_output", "call_id": call.call_id,
                                                  "output": json.dumps({"sky": "sunny", "celsius": 21})})
        created = await collect(conn, "conversation.item.done")
        assert created[-1].item.type == "function_call_output"
        await conn.response.create()
        answer = of(await collect(conn), "response.done")[0].response
        assert answer.status == "completed" and len(answer.output) == 1
        assert "sunny" in answer.output[0].content[0].text and "21" in answer.output[0].content[0].text
        # The model was given the call and its result, in the chat API's shape.
        sent = fake_backend.calls[-1]["messages"]
        assert any(m.get("tool_calls") and m["tool_calls"][0]["id"] == call.call_id for m in sent)
        assert sent[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": '{"sky": "sunny", "celsius": 21}'}


async def test_bad_tools_and_outputs_are_refused_by_name_and_the_session_goes_on(url):
    async with client(url).realtime.connect(model="fake/m") as conn:
        await collect(conn, "session.created")
        cases = [
            ({"type": "session.update", "session": {"type": "realtime", "tools": [{**WEATHER, "name": "get weather"}]}},
             "session.tools[0].name"),
            ({"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER],
                                                    "tool_choice": {"type": "function", "name": "nope"}}},
             "session.tool_choice"),
            ({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_x",
                                                           "output": "hi"}}, "item.call_id"),
            ({"type": "response.create", "response": {"tools": [{"type": "mcp", "server_label": "x"}]}},
             "response.tools[0].type"),
        ]
        for event, param in cases:
            await conn.send(event)
            error = (await collect(conn, "error"))[-1]
            assert error.error.param == param, (event, error)
        events = await ask(conn, "Hello there")  # no tools declared: a plain reply
        assert of(events, "response.done")[0].response.output[0].content[0].text == "No tools today."


async def test_per_response_tools_and_tool_choice_none(url):
    async with client(url).realtime.connect(model="fake/m") as conn:
        await collect(conn, "session.created")
        await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                  "content": [{"type": "input_text", "text": "Weather in Rome?"}]})
        await conn.response.create(response={"tools": [WEATHER]})
        output = of(await collect(conn), "response.done")[0].response.output
        assert output[-1].type == "function_call" and json.loads(output[-1].arguments) == {"city": "Rome"}
        await conn.response.create(response={"tools": [WEATHER], "tool_choice": "none"})
        events = await collect(conn)
        assert [o.type for o in of(events, "response.done")[0].response.output] == ["message"]
        assert fake_backend.calls[-1]["tool_choice"] == "none"
        await ask(conn, "And now?")  # the session's own (no tools) came back
        assert "tools" not in fake_backend.calls[-1]


WEATHER_CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    WEATHER_CALLS.append(city)
    return f"It is sunny and 21 degrees Celsius in {city}."


async def _agent_round_trip(base: str, question: str) -> tuple[list, str, list]:
    """An openai-agents RealtimeAgent with one @function_tool asks ``question`` as text; the
    raw server events, the last assistant reply's text and the SDK's tool-end events."""
    agent = RealtimeAgent(name="Nova", instructions="You are Nova. Use your tools when they help; answer in one"
                          " short sentence.", tools=[get_weather])
    session = await RealtimeRunner(agent).run(model_config={"url": base.replace("http://", "ws://") + "/v1/realtime",
                                                            "api_key": "unused"})
    async with session:
        seen = AgentEvents(session)
        await seen.until(lambda: len(seen.of("session.updated")) >= 1, timeout=30)
        assert not seen.of("error"), seen.of("error")  # the SDK's session.update (tools included) was taken
        await session.send_message(question)
        # The call, the tool run by the SDK, its output, and a second response that uses it.
        await seen.until(lambda: len(seen.of("response.done")) >= 2, timeout=120)
        tool_ends = [e for e in seen.events if e.type == "tool_end"]
        reply = seen.of("response.done")[-1]["response"]["output"]
        text = " ".join(transcript_of(item) for item in reply if item["type"] == "message")
    return seen.raw, text, tool_ends


def transcript_of(item: dict) -> str:
    return " ".join(part.get("transcript") or part.get("text") or "" for part in item.get("content") or [])


async def test_openai_agents_realtime_agent_tool_round_trip_on_the_scripted_model(spoken_url):
    WEATHER_CALLS.clear()
    raw, text, tool_ends = await _agent_round_trip(spoken_url.replace("ws://", "http://"),
                                                   "What's the weather in Paris?")
    assert WEATHER_CALLS == ["Paris"] and tool_ends and "21 degrees" in tool_ends[0].output
    assert "sunny" in text and "21" in text, text
    assert not [e for e in raw if e.get("type") == "error"]


async def test_openai_agents_realtime_agent_tool_round_trip_on_the_embedded_model(nova_factory):
    """The default stack: Qwen2.5-Coder-0.5B calls the tool with the right city and speaks an answer using it."""
    WEATHER_CALLS.clear()
    async with serving(create_app(nova_factory)) as base:
        raw, text, tool_ends = await _agent_round_trip(base, "What is the weather in Paris right now?")
    assert WEATHER_CALLS and WEATHER_CALLS[0].lower().startswith("paris"), WEATHER_CALLS
    assert any(w in text.lower() for w in ("sunny", "21", "twenty")), text
    audio = [e for e in raw if e.get("type") == "response.output_audio.delta"]
    assert audio, "the answer was spoken"
    assert not [e for e in raw if e.get("type") == "error"]


def _server_tool_url(function: str, **extra):
    async def serve(store, monkeypatch_module):
        async for base in served(store, tools={"weather": {"function": function, **extra}}):
            yield base
    return pytest.fixture(scope="module")(serve)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(Path(__file__).parent))
        yield patch


weather_url = _server_tool_url("tool_funcs:get_weather")
broken_url = _server_tool_url("tool_funcs:explode")
slow_url = _server_tool_url("tool_funcs:dawdle", timeout_s=0.5)


async def _server_tool_turn(url: str, text: str = "What's the weather in Lisbon?") -> list:
    """A question, the server's tool call and result, and the answer: every event until the second response.done."""
    async with client(url).realtime.connect(model="fake/m") as conn:
        await collect(conn, "session.created")
        events = await ask(conn, text)
        events += await collect(conn)  # the model answers the result at once, in a response of its own
        after = await ask(conn, "Thanks!")  # and the session goes on
        assert of(after, "response.done")[0].response.status == "completed"
    return events


async def test_a_yaml_python_tool_is_run_by_the_server_and_its_result_reaches_the_reply(weather_url):
    import tool_funcs

    tool_funcs.CALLS.clear()
    events = await _server_tool_turn(weather_url)
    assert tool_funcs.CALLS == [("get_weather", {"city": "Lisbon", "unit": "celsius"})]
    first, second = [e.response for e in of(events, "response.done")]
    assert first.output[-1].type == "function_call" and first.output[-1].name == "weather"
    outputs = [e.item for e in of(events, "conversation.item.done") if e.item.type == "function_call_output"]
    assert len(outputs) == 1 and outputs[0].call_id == first.output[-1].call_id
    assert outputs[0].output == "cloudy and 14 degrees celsius in Lisbon"  # the transcript shows what happened
    assert "cloudy and 14 degrees" in second.output[0].content[0].text  # the model answered with it
    assert fake_backend.calls[-2]["tools"][0]["function"]["parameters"]["required"] == ["city"]  # from type hints


async def _failing_tool_reads_as_a_result(url: str, says: str) -> None:
    events = await _server_tool_turn(url)
    outputs = [e.item.output for e in of(events, "conversation.item.done") if e.item.type == "function_call_output"]
    assert len(outputs) == 1 and outputs[0].startswith("the tool failed: ") and says in outputs[0], outputs
    answer = of(events, "response.done")[-1].response
    assert answer.status == "completed" and says in answer.output[0].content[0].text


async def test_a_tool_that_raises_becomes_a_result_the_model_reads(broken_url):
    await _failing_tool_reads_as_a_result(broken_url, "RuntimeError: the weather service is down")


async def test_a_tool_that_hangs_becomes_a_result_the_model_reads(slow_url):
    await _failing_tool_reads_as_a_result(slow_url, "did not answer within 0.5 s")


def test_a_tool_function_that_does_not_import_is_a_config_error_with_its_line():
    from cadence.errors import ConfigError

    text = "tools:\n  weather:\n    function: no_such_module:get_weather\npipeline:\n  - type: vad\n"
    with pytest.raises(ConfigError, match=r"3:\d+: tools\.weather\.function: cannot import module 'no_such_module'"):
        validate(load_config_text(text))


async def _serve_mcp(store, mcp: dict):
    async for base in served(store, tools={"forecast": {"mcp": mcp, "tools": ["get_forecast"]}}):
        yield base


MCP_SERVER = str(Path(__file__).parent / "mcp_weather_server.py")


@pytest.fixture(scope="module")
async def stdio_mcp_url(store):
    async for url in _serve_mcp(store, {"command": sys.executable, "args": [MCP_SERVER]}):
        yield url


@pytest.fixture(scope="module")
def http_mcp_server():
    port = closed_port()
    proc = subprocess.Popen([sys.executable, MCP_SERVER, "http", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until it listens
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
async def http_mcp_url(store, http_mcp_server):
    async for url in _serve_mcp(store, {"url": http_mcp_server}):
        yield url


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_an_mcp_tool_is_called_and_its_result_reaches_the_reply(transport, stdio_mcp_url, http_mcp_url):
    url = stdio_mcp_url if transport == "stdio" else http_mcp_url
    events = await _server_tool_turn(url)
    first = of(events, "response.done")[0].response
    assert first.output[-1].type == "function_call" and first.output[-1].name == "get_forecast"
    outputs = [e.item.output for e in of(events, "conversation.item.done") if e.item.type == "function_call_output"]
    assert outputs == ["rain and 9 degrees in Lisbon (from MCP)"], outputs
    assert "rain and 9 degrees" in of(events, "response.done")[-1].response.output[0].content[0].text
    offered = [t["function"]["name"] for t in fake_backend.calls[-2]["tools"]]
    assert offered == ["get_forecast"]  # only the listed tool of the server


@pytest.fixture(scope="module")
async def unreachable_mcp_url(store):
    async for url in _serve_mcp(store, {"url": f"http://127.0.0.1:{closed_port()}/mcp"}):
        yield url


async def test_an_unreachable_mcp_server_is_an_error_naming_it_and_the_session_goes_on(unreachable_mcp_url):
    async with client(unreachable_mcp_url).realtime.connect(model="fake/m") as conn:
        await collect(conn, "session.created")
        error = (await collect(conn, "error"))[-1].error
        assert error.param == "tools.forecast" and "unavailable" in error.message
        events = await ask(conn, "Hello")
        assert of(events, "response.done")[0].response.status == "completed"


@pytest.fixture(scope="module")
async def parallel_url(store):
    async for base in served(store, "tools2"):
        yield base


async def test_parallel_calls_are_all_items_and_deleting_one_takes_it_out_of_the_context(parallel_url):
    async with client(parallel_url).realtime.connect(model="fake/m") as conn:
        await conn.session.update(session={"type": "realtime", "tools": [WEATHER]})
        await collect(conn, "session.updated")
        done = of(await ask(conn, "What's the weather in Paris and Rome?"), "response.done")[0].response
        calls = [o for o in done.output if o.type == "function_call"]
        assert [json.loads(c.arguments)["city"] for c in calls] == ["Paris", "Rome"]  # none lost
        assert len({c.call_id for c in calls}) == 2 and [o.type for o in done.output][0] == "message"
        for call in calls:
            await conn.conversation.item.create(item={"type": "function_call_output", "call_id": call.call_id,
                                                      "output": f"sunny in {json.loads(call.arguments)['city']}"})
            await collect(conn, "conversation.item.done")
        await conn.conversation.item.delete(item_id=calls[1].id)  # the Rome call and its result leave the context
        await collect(conn, "conversation.item.deleted")
        await conn.response.create()
        await collect(conn)
        sent = fake_backend.calls[-1]["messages"]
        ids = [c["id"] for m in sent for c in m.get("tool_calls") or []]
        assert ids == [calls[0].call_id], sent
        assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == [calls[0].call_id]
        assert sent[-1]["role"] == "tool" and "sunny in Paris" in sent[-1]["content"], sent


void_url = _server_tool_url("tool_funcs:note_down")


async def test_a_tool_that_returns_nothing_still_gets_an_answer(void_url):
    events = await _server_tool_turn(void_url)
    outputs = [e.item.output for e in of(events, "conversation.item.done") if e.item.type == "function_call_output"]
    assert outputs == ["done"], outputs
    assert "done" in of(events, "response.done")[-1].response.output[0].content[0].text


async def test_a_session_that_cannot_be_built_says_so_and_closes(store, monkeypatch):
    """A failure building the session's pipeline is an error event and close 1011, not a dropped connection."""
    import contextlib

    import websockets

    def broken(self, *args, **kwargs):
        raise RuntimeError("no pipeline today")

    async with contextlib.aclosing(served(store)) as servers:
        base = await anext(servers)
        monkeypatch.setattr(PipelineFactory, "build", broken)
        async with websockets.connect(base + "/v1/realtime") as ws:
            error = json.loads(await ws.recv())
            assert error["type"] == "error" and error["error"]["code"] == "session_failed", error
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1011
