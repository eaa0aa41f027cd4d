"""server.cors_origins (pages from other origins call the HTTP routes) and server.tls (https and
wss served directly): preflights, a WebRTC call from another origin in headless Chromium, the
openai npm SDK over wss, and the config errors that name the keys."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import soundfile as sf
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from cadence.config import load_and_validate, load_config_text, validate
from cadence.errors import ConfigError
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from conftest import ROOT, run_cli, start_server, word_error_rate
from servers import closed_port, serving
from test_browser import chromium_args

ORIGIN = "http://localhost:5173"
KEY = "k-cors-123"
JS = ROOT / "tests" / "js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INSTALL_NODE = ("(command -v npm || apt-get install -y nodejs npm) && npm ci --prefix tests/js (see the README's"
                " test command)")


def tiny(tmp_path: Path, server: dict) -> dict:
    """The smallest config that serves every route: no models (its LLM is never asked)."""
    return {"server": server, "memory": {"store": str(tmp_path / "memory.db")},
            "router": {"providers": {"fake": {"kind": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1"}}},
            "pipeline": [{"type": "context"}, {"type": "llm", "model": "fake/m"}]}


def tiny_app(store, tmp_path: Path, **server):
    return create_app(PipelineFactory(validate(load_config_text(json.dumps(tiny(tmp_path, server)))), store))


async def preflight(http: aiohttp.ClientSession, url: str, method: str, origin: str = ORIGIN):
    async with http.options(url, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                          "Access-Control-Request-Headers": "authorization, content-type"}) as r:
        return r.status, r.headers


HTTP_ROUTES = [("/v1/realtime/calls", "POST"), ("/v1/realtime", "POST"), ("/v1/chat/completions", "POST"),
               ("/v1/models", "GET"), ("/v1/voices", "GET"), ("/v1/memory/u1", "DELETE")]


async def test_preflights_from_an_allowed_origin_pass_without_the_key(store, tmp_path):
    async with serving(tiny_app(store, tmp_path, cors_origins=[ORIGIN], api_keys=[KEY])) as base:
        async with aiohttp.ClientSession() as http:
            for path, method in HTTP_ROUTES:  # a preflight carries no Authorization: the key check lets it by
                status, headers = await preflight(http, base + path, method)
                assert status == 200, (path, status)
                assert headers["Access-Control-Allow-Origin"] == ORIGIN, (path, headers)
                assert method in headers["Access-Control-Allow-Methods"], (path, headers)
                allowed = headers["Access-Control-Allow-Headers"].lower()
                assert "authorization" in allowed and "content-type" in allowed, (path, headers)
                assert "Access-Control-Allow-Credentials" not in headers
            status, headers = await preflight(http, base + "/v1/realtime/calls", "POST", origin="https://evil.example")
            assert status == 400 and "Access-Control-Allow-Origin" not in headers, headers

            # The real request still needs the key; its refusal carries CORS headers, so the page can read it.
            async with http.get(base + "/v1/models", headers={"Origin": ORIGIN}) as r:
                assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
                assert (await r.json())["error"]["code"] == "invalid_api_key"
            async with http.get(base + "/v1/models", headers={"Origin": ORIGIN, "Authorization": f"Bearer {KEY}"}) as r:
                assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
                assert "Origin" in r.headers["Vary"]
            async with http.post(base + "/v1/realtime/calls", data="not sdp", headers={
                    "Origin": ORIGIN, "Authorization": f"Bearer {KEY}", "Content-Type": "application/sdp"}) as r:
                assert r.status == 400 and r.headers["Access-Control-Allow-Origin"] == ORIGIN  # served, as CORS
            async with http.get(base + "/v1/voices", headers={"Origin": "https://evil.example",
                                                              "Authorization": f"Bearer {KEY}"}) as r:
                assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers

    async with serving(tiny_app(store, tmp_path, cors_origins=["*"], api_keys=[KEY])) as base:
        async with aiohttp.ClientSession() as http:
            status, headers = await preflight(http, base + "/v1/chat/completions", "POST", origin="https://any.example")
            assert status == 200 and headers["Access-Control-Allow-Origin"] == "*", headers
            async with http.get(base + "/v1/voices", headers={"Origin": "https://any.example",
                                                              "Authorization": f"Bearer {KEY}"}) as r:
                assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
                assert "Retry-After" in r.headers["Access-Control-Expose-Headers"]  # a page may read a 429's wait


async def test_without_cors_origins_there_are_no_cors_headers(store, tmp_path):
    async with serving(tiny_app(store, tmp_path)) as base:
        async with aiohttp.ClientSession() as http:
            for path, method in [("/v1/realtime/calls", "POST"), ("/v1/chat/completions", "POST")]:
                status, headers = await preflight(http, base + path, method)
                assert status == 405, (path, status)  # not answered as a preflight: no route serves OPTIONS
                assert not [h for h in headers if h.lower().startswith("access-control-")], (path, headers)
            async with http.get(base + "/v1/voices", headers={"Origin": ORIGIN}) as r:
                assert r.status == 200 and not [h for h in r.headers if h.lower().startswith("access-control-")]


PAGE = """<!doctype html><html><body><p>another origin's page</p><script>
// What src/cadence/web/index.html does for WebRTC, against a server on another origin.
window.result = { events: [], audioMs: 0 };
window.blockedFetch = (server) => fetch(server + "/v1/realtime/calls", { method: "POST", body: "v=0\\r\\n",
  headers: { "Content-Type": "application/sdp" } }).then((r) => "HTTP " + r.status, (e) => "rejected: " + e);
window.call = async (server) => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  const pc = window.pc = new RTCPeerConnection();
  stream.getTracks().forEach((t) => pc.addTrack(t, stream));
  const speaker = new Audio();
  speaker.autoplay = true;
  pc.ontrack = (e) => { speaker.srcObject = e.streams[0] || new MediaStream([e.track]); };
  const channel = pc.createDataChannel("oai-events");
  channel.onmessage = (m) => result.events.push(JSON.parse(m.data));
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => {
    if (pc.iceGatheringState === "complete") return ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok();
    setTimeout(ok, 2000);
  });
  const answer = await fetch(server + "/v1/realtime/calls", { method: "POST", body: pc.localDescription.sdp,
    headers: { "Content-Type": "application/sdp" } });
  if (!answer.ok) throw new Error("call refused: HTTP " + answer.status);
  await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });
  setInterval(async () => (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio" && r.totalAudioEnergy > 0) {
      result.audioMs = r.totalSamplesDuration * 1000;
    }
  }), 250);
};
</script></body></html>"""


async def test_a_page_from_another_origin_calls_over_webrtc(nova_factory, speak, tmp_path):
    assert CHROMIUM, "the browser test needs Debian's chromium: apt-get install chromium (see the README)"
    question = "What is the capital of France?"
    wav = tmp_path / "question.wav"
    sf.write(wav, np.concatenate([np.zeros(8000, dtype=np.int16), speak(question, rate=16000),
                                  np.zeros(16000 * 12, dtype=np.int16)]), 16000, subtype="PCM_16")
    # The page comes from a server of its own on loopback, another port: another origin. (A page
    # Playwright fulfils itself has no address, and Chromium's local network access refuses its
    # calls to loopback for that alone.)
    page_app = Starlette(routes=[Route("/", lambda request: HTMLResponse(PAGE))])
    assert not nova_factory.config.config.server.cors_origins
    blocking_app = create_app(nova_factory)
    async with serving(page_app) as page_origin, serving(blocking_app) as blocking:
        allowing = copy.copy(nova_factory)  # the same loaded models, a config that lets the page in
        config = nova_factory.config.config
        server = config.server.model_copy(update={"cors_origins": [page_origin]})
        allowing.config = dataclasses.replace(nova_factory.config, config=config.model_copy(update={"server": server}))
        app = create_app(allowing)
        async with serving(app) as allowed:
            events = await call_from(page_origin, blocking, allowed, app, wav)
    assert not blocking_app.state.realtime_sessions and not app.state.realtime_sessions
    kinds = [e["type"] for e in events]
    assert kinds[0] == "session.created" and "error" not in kinds, kinds
    heard = next(e["transcript"] for e in events if e["type"].endswith("input_audio_transcription.completed"))
    assert word_error_rate(question, heard) <= 0.2, heard
    reply = next(e for e in events if e["type"] == "response.done")["response"]
    assert reply["status"] == "completed" and reply["output"][0]["content"][0]["transcript"].strip(), reply


async def call_from(page_origin: str, blocking: str, allowed: str, app, wav: Path) -> list[dict]:
    """Chromium opens the page, fails to call ``blocking``, calls ``allowed``; returns that call's events."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav))
        try:
            page = await browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            await page.goto(page_origin + "/")
            # Without cors_origins the browser refuses the call at its preflight: no POST reaches the server.
            assert (await page.evaluate("(s) => blockedFetch(s)", blocking)).startswith("rejected: TypeError")
            refusals = [line for line in console if "blocked by CORS policy" in line]
            assert refusals and all("preflight" in line and "address space" not in line for line in refusals), console
            await page.evaluate("(s) => call(s)", allowed)
            await page.wait_for_function(
                "result.events.some((e) => e.type === 'conversation.item.input_audio_transcription.completed')"
                " && result.events.some((e) => e.type === 'response.done') && result.audioMs > 500", timeout=90_000)
            events = await page.evaluate("result.events")
            await page.evaluate("pc.close()")  # hang up: the server ends the session
            for _ in range(100):
                if not app.state.realtime_sessions:
                    break
                await asyncio.sleep(0.1)
        finally:
            await browser.close()
    return events


def make_cert(folder: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (its own CA) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def node_command() -> list[str]:
    node = shutil.which("node")
    assert node, f"the wss test needs Node.js and npm: {INSTALL_NODE}"
    assert (JS / "node_modules" / "openai" / "package.json").is_file(), \
        f"the wss test needs the openai npm package in tests/js/node_modules: {INSTALL_NODE}"
    major, minor = (int(part) for part in subprocess.run(
        [node, "--version"], capture_output=True, text=True).stdout.strip().lstrip("v").split(".")[:2])
    assert (major, minor) >= (18, 0), f"Node.js 18+ is needed, found {major}.{minor}"
    return [node, str(JS / "realtime_wss.mjs")]  # below 22 the script takes its WebSocket from `ws`


async def test_the_openai_node_sdk_connects_over_wss(tmp_path):
    command = node_command()
    make_cert(tmp_path)
    config = tmp_path / "tls.yaml"  # relative paths: from the config's folder, not the working directory
    server = {"api_keys": [KEY], "tls": {"cert": "server.crt", "key": "server.key"}}
    config.write_text(json.dumps({**tiny(tmp_path, server), "transport": {"type": "websocket"}}))
    process, url = await asyncio.to_thread(start_server, config)
    try:
        assert url.startswith("https://127.0.0.1:"), url
        assert f"realtime: wss://{url.removeprefix('https://')}/v1/realtime" in "".join(process.output_lines)
        env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(tmp_path / "server.crt")}
        node = await asyncio.to_thread(subprocess.run, [*command, f"{url}/v1", KEY], capture_output=True,
                                       text=True, timeout=60, env=env, cwd=JS)
        assert node.returncode == 0, node.stdout + node.stderr
        events = [json.loads(line) for line in node.stdout.splitlines() if line.startswith("{")]
        wss = url.replace("https://", "wss://")
        assert events[0] == {"type": "client.url", "url": f"{wss}/v1/realtime?model=gpt-realtime"}  # Cadence's path
        kinds = [e["type"] for e in events]
        assert kinds[1] == "session.created" and kinds[-1] == "session.updated", kinds
        assert events[-1]["session"]["instructions"] == "You are Nova, over TLS."

        trusted = ssl.create_default_context(cafile=str(tmp_path / "server.crt"))
        request = urllib.request.Request(f"{url}/v1/voices", headers={"Authorization": f"Bearer {KEY}"})
        with await asyncio.to_thread(urllib.request.urlopen, request, context=trusted, timeout=10) as response:
            assert response.status == 200 and json.load(response)["object"] == "list"
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):  # really TLS, really checked
            await asyncio.to_thread(urllib.request.urlopen, f"{url}/healthz", context=ssl.create_default_context(),
                                    timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_tls_files_and_cors_origins_are_checked_at_start(tmp_path):
    make_cert(tmp_path)
    _, other_key = make_cert(tmp_path, "other")

    def config(server: str) -> Path:
        path = tmp_path / "bad.yaml"
        path.write_text(f"server:\n{textwrap.indent(server, '  ')}\npipeline:\n  - {{type: context}}\n")
        return path

    def error(server: str) -> str:
        with pytest.raises(ConfigError) as info:
            load_and_validate(str(config(server)))
        return str(info.value)

    assert load_and_validate(str(config("tls: {cert: server.crt, key: server.key}"))).config.server.tls
    message = error("tls:\n  cert: missing.crt\n  key: server.key")
    assert f"{tmp_path / 'bad.yaml'}:3:5: server.tls.cert: cannot read {tmp_path / 'missing.crt'}" in message, message
    message = error("tls:\n  cert: server.crt\n  key: nope/server.key")
    assert "bad.yaml:4:5: server.tls.key: cannot read" in message and "No such file" in message, message
    message = error(f"tls: {{cert: server.crt, key: {other_key}}}")  # absolute paths are taken as they are
    assert "server.tls: " in message and "not a PEM certificate and its unencrypted private key" in message, message

    message = error('cors_origins:\n  - http://localhost:5173\n  - https://app.example.com/')
    assert "bad.yaml:4:7: server.cors_origins[1]: " in message and "not an origin (drop the trailing '/')" in message
    message = error('cors_origins: ["*", "https://app.example.com"]')
    assert "server.cors_origins: " in message and "give it alone" in message, message
    message = error('cors_origins: ["*"]')  # any page, and no key to stop it
    assert "server: " in message and "without api_keys" in message, message
    ok = load_and_validate(str(config('cors_origins: ["HTTPS://App.Example.com:8443", "capacitor://localhost"]')))
    assert ok.config.server.cors_origins == ["https://app.example.com:8443", "capacitor://localhost"]

    # At start: run-pipeline refuses before loading anything, naming the key.
    config("tls: {cert: gone.crt, key: server.key}")
    result = run_cli(str(tmp_path / "bad.yaml"), timeout=120)
    assert result.returncode == 1 and "server.tls.cert: cannot read" in result.stderr, result.stderr
