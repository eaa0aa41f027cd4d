"""A character card with a lorebook, from YAML and per session (real embedded model)."""

from __future__ import annotations

import asyncio
import json
import textwrap

import pytest
import websockets

from cadence.config import load_and_validate
from cadence.errors import ConfigError
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from conftest import ROOT
from servers import serving

CONFIG = textwrap.dedent("""
    session:
      instructions: "You are a companion."
      {character}
    pipeline:
      - {{type: context}}
      - {{type: llm, model: local/smollm2-135m-instruct, max_tokens: 20, seed: 7}}
""")
CAPTAIN = "Captain Mira runs the Meridian"


def spy(factory, monkeypatch) -> list:
    requests = []
    real = factory.router.stream
    monkeypatch.setattr(factory.router, "stream", lambda params: (requests.append(params), real(params))[1])
    return requests


def lore_of(request: dict) -> str:
    return " ".join(m["content"] for m in request["messages"][1:] if m["role"] == "system")


@pytest.fixture
def card_config(tmp_path):
    (tmp_path / "cards").mkdir()
    card = json.loads((ROOT / "configs" / "cards" / "nova.json").read_text())
    card["data"]["character_book"]["scan_depth"] = 1  # only the turn being answered is scanned
    (tmp_path / "cards" / "nova.json").write_text(json.dumps(card))
    path = tmp_path / "nova.yaml"
    path.write_text(CONFIG.format(character="character: cards/nova.json"))
    return path


async def test_a_card_from_yaml_shapes_the_prompt_and_its_lore_follows_the_keys(card_config, store, monkeypatch):
    from cadence.transports.file import FileConversation

    factory = PipelineFactory(load_and_validate(str(card_config)), store)
    requests = spy(factory, monkeypatch)
    result = await FileConversation(factory, pace=0).run_text(
        ["Hi, how are you?", "How is the Captain today?", "And the weather?"])
    assert result.exchanges[0].user is None and result.exchanges[0].reply.startswith("Hey, it's Nova")  # first_mes
    assert [bool(e.reply.strip()) for e in result.exchanges] == [True] * 4
    system = requests[0]["messages"][0]["content"]
    assert system.startswith("You are a companion.") and "Nova is a curious, warm companion" in system
    assert "User calls Nova on the ship's radio" in system
    assert [CAPTAIN in lore_of(r) for r in requests] == [False, True, False]  # exactly when the key is mentioned
    assert all(r["messages"][-1] == {"role": "system", "content": "Stay in character as Nova. Keep replies to one"
                                     " or two short sentences."} for r in requests)  # post-history, last


def test_a_card_outside_the_config_folder_or_broken_is_a_config_error(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(CONFIG.format(character="character: ../elsewhere/card.json"))
    with pytest.raises(ConfigError, match=r"a.yaml:4:\d+: session.character: .* outside the config's folder"):
        load_and_validate(str(path))
    (tmp_path / "bad.json").write_text('{"spec": "chara_card_v2", "data": {"description": "no name"}}')
    path.write_text(CONFIG.format(character="character: bad.json"))
    with pytest.raises(ConfigError, match="session.character: .*bad.json: the card has no name"):
        load_and_validate(str(path))


async def test_a_card_per_session_through_provider_data(store, monkeypatch, tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text(CONFIG.format(character=""))
    factory = PipelineFactory(load_and_validate(str(path)), store)
    requests = spy(factory, monkeypatch)
    card = json.loads((ROOT / "configs" / "cards" / "nova.json").read_text())
    async with serving(create_app(factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime") as ws:
            json.loads(await ws.recv())
            json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "session.update", "event_id": "bad", "session": {
                "providerData": {"character": {"spec": "chara_card_v2", "data": {}}}}}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))["error"]
            assert error["param"] == "session.providerData.character" and "no name" in error["message"]
            await ws.send(json.dumps({"type": "session.update", "session": {"providerData": {"character": card}}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.updated"
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Where is the Meridian?"}]}}))
            await ws.send(json.dumps({"type": "response.create"}))
            while json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "response.done":
                pass
            await ws.send(json.dumps({"type": "session.update", "session": {"providerData": {"character": None}}}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.updated"
            await ws.send(json.dumps({"type": "response.create"}))
            while json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "response.done":
                pass
    with_card, without = requests[-2], requests[-1]
    assert "Nova is a curious" in with_card["messages"][0]["content"]
    assert "The Meridian is a small research ship" in lore_of(with_card)
    assert without["messages"][0]["content"] == "You are a companion." and not lore_of(without)
