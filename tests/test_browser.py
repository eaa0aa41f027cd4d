"""The web page at / in headless Chromium: a fake microphone asks a question, the page shows
the transcript and plays the spoken reply."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, word_error_rate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "tests" / "artifacts"


def chromium_args(microphone_wav) -> list[str]:
    """Headless Chromium with a fake microphone that loops ``microphone_wav``."""
    return ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone_wav}",
            "--autoplay-policy=no-user-gesture-required"]



@pytest.mark.parametrize("transport", ["websocket", "webrtc"])
async def test_page_hears_a_question_and_plays_the_reply(nova_server, speak, tmp_path, transport):
    from playwright.async_api import async_playwright

    assert CHROMIUM, "the browser test needs Debian's chromium: apt-get install chromium (see the README)"
    question = "What is the capital of France?"
    wav = tmp_path / "question.wav"
    # Chromium loops the file as the microphone: the question, then a long pause.
    sf.write(wav, np.concatenate([np.zeros(8000, dtype=np.int16), speak(question, rate=16000),
                                  np.zeros(16000 * 12, dtype=np.int16)]), 16000, subtype="PCM_16")
    ARTIFACTS.mkdir(exist_ok=True)
    url = nova_server  # `run-pipeline configs/nova.yaml`, as a user starts it
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=chromium_args(wav))
        try:
            page = await browser.new_page()
            await page.goto(url + "/")
            await page.select_option("#transport", transport)
            await page.click("#talk")
            await page.wait_for_function(
                "window.cadenceState.userTranscripts.length > 0 && window.cadenceState.audioMs > 500"
                " && document.querySelectorAll('.line.bot').length > 0", timeout=60_000)
            await page.wait_for_timeout(500)
            state = await page.evaluate("window.cadenceState")
            await page.screenshot(path=str(ARTIFACTS / f"browser-page-{transport}.png"), full_page=True)
            await page.click("#talk")  # Stop: hang up cleanly so the server ends the session now
            await page.wait_for_timeout(500)
        finally:
            await browser.close()
    assert word_error_rate(question, state["userTranscripts"][0]) <= 0.2, state["userTranscripts"]
    assert state["botTranscripts"][0].strip() and not state["errors"], state
