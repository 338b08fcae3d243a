"""The chat page in a real headless browser: Debian's chromium driven by Playwright.

Playwright's own browser download does not work offline, so it is pointed at
/usr/bin/chromium (tests/run.sh installs the package). The page is the
`paperbot chat` process of the ``chat_server`` fixture, whose index holds an
XSS probe entry; one more test runs the app in LLM mode against a scripted
OpenAI-protocol server to see tokens stream into the page.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from gradio_client import Client
from playwright.sync_api import Page, sync_playwright

from bot.app import paper_href
from tests.conftest import ROOT, XSS_PROBE, XSS_QUESTION, free_port, write_report_section
from tests.fakeopenai import FakeOpenAI, Reply

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = ROOT / "artifacts"
ALD = "How can atomic layer deposition mitigate multipacting in superconducting RF cavities?"
ALD_URL = "https://arxiv.org/abs/2405.18949"
FOLLOW_UP = "What film thickness did they choose?"
FRACTAL = "Is the boundary between trainable and untrainable hyperparameters fractal?"
TIMINGS: list[tuple[str, str, float, float]] = []  # (mode, question, first token s, full answer s)

# Records, in page time, when the newest bot message first shows answer text and
# when the sources panel changes (the last thing a finished answer updates).
WATCH = """
() => {
  const bots = () => document.querySelectorAll('#chat [data-testid="bot"]');
  const panel = () => document.querySelector('#sources [data-testid="markdown"]').innerText;
  const seen = bots().length, before = panel();
  const t = window.__t = {sent: performance.now(), first: null, full: null, states: new Set()};
  const check = () => {
    const all = bots();
    if (all.length > seen) {
      const text = all[all.length - 1].innerText;
      if (/[A-Za-z]/.test(text) && !text.includes('Searching')) {
        t.states.add(text);
        if (t.first === null) t.first = performance.now();
      }
    }
    if (t.full === null && panel() !== before) t.full = performance.now();
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: install Debian's chromium package (tests/run.sh does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Session:
    """One browser tab on the app, recording dialogs and every host it contacts."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 950})
        self.page: Page = self.context.new_page()
        self.dialogs: list[str] = []
        self.hosts: set[str] = set()
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda request: self.hosts.add(urlsplit(request.url).hostname or request.url))
        self.page.goto(url)
        self.page.wait_for_selector("#question textarea")

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def ask(self, question: str, mode: str = "extractive") -> str:
        """Type ``question``, wait for the whole answer; returns the newest bot message's text."""
        page = self.page
        page.fill("#question textarea", question)
        page.evaluate(WATCH)
        page.keyboard.press("Enter")
        page.wait_for_function("window.__t.full !== null && window.__t.first !== null", timeout=120_000)
        t = page.evaluate("({first: __t.first - __t.sent, full: __t.full - __t.sent, states: __t.states.size})")
        TIMINGS.append((mode, question, t["first"] / 1000, t["full"] / 1000))
        self.states = t["states"]
        return self.bot_messages()[-1]

    def bot_messages(self) -> list[str]:
        return [m.inner_text() for m in self.page.query_selector_all('#chat [data-testid="bot"]')]

    def links(self) -> dict[str, str]:
        return {a.inner_text(): a.get_attribute("href") for a in self.page.query_selector_all("#sources a")}

    def panel(self) -> str:
        return self.page.inner_text("#sources")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def session(browser, chat_server):
    s = Session(browser, chat_server.url)
    yield s
    s.close()


def _markers(text: str) -> set[int]:
    return {int(n) for group in re.findall(r"\[(\d+(?:,\s*\d+)*)\]", text) for n in re.split(r",\s*", group)}


def test_chat_streams_cited_answers_with_sources_and_follow_up(session, chat_server, engine):
    page = session.page
    stats = engine.stats()  # the app's index is this one plus the XSS probe
    header = page.inner_text("#header")
    assert "Answer mode: extractive" in header
    assert f"{stats['papers'] + 1} papers, {stats['chunks'] + 1} chunks" in header

    answer = session.ask(ALD)
    expected = Client(chat_server.url, verbose=False, analytics_enabled=False).predict(ALD, api_name="/ask")
    assert _markers(answer) == {c["n"] for c in expected["citations"]} != set()
    panel = session.panel()
    assert {int(n) for n in re.findall(r"^\[(\d+)\]", panel, re.M)} == _markers(answer)
    # Every cited paper is linked, by title, to its own page (or an arXiv title search).
    links = session.links()
    assert links == {c["title"]: paper_href(c["title"], c["url"]) for c in expected["citations"]}
    assert links[expected["citations"][0]["title"]] == ALD_URL
    assert expected["citations"][0]["quote"] in panel and "relevance 0." in panel

    follow_up = session.ask(FOLLOW_UP)
    assert len(session.bot_messages()) == 2 and "[1]" in follow_up
    assert ALD_URL in session.links().values() and FOLLOW_UP in session.panel()
    session.screenshot("follow_up.png")

    page.click("#new-chat")
    page.wait_for_function("document.querySelectorAll('#chat [data-testid=\"bot\"]').length === 0")
    assert "appear here" in session.panel()
    answer = session.ask(FRACTAL)
    assert "fractal" in answer and "[1]" in answer and len(session.bot_messages()) == 1
    assert session.screenshot("chat.png").stat().st_size > 10_000

    assert session.hosts == {"127.0.0.1"}  # the page makes no outside calls
    assert session.dialogs == []


def test_xss_entry_and_question_render_as_text(session):
    page = session.page
    answer = session.ask(XSS_QUESTION)
    page.wait_for_timeout(500)  # give any injected handler a chance to fire

    assert "<script>alert(4)</script>" in answer and "<img src=x onerror=alert(6)>" in answer
    assert XSS_QUESTION in page.inner_text("#chat")
    assert XSS_PROBE["title"] in session.links()  # the title is the link's text, shown literally
    assert session.dialogs == []
    injected = page.evaluate(
        """() => ({
            scripts: [...document.querySelectorAll('script')].filter(s => s.textContent.includes('alert(')).length,
            onerror: document.querySelectorAll('[onerror]').length,
            imgX: [...document.querySelectorAll('img')].filter(i => i.getAttribute('src') === 'x').length,
            jsLinks: [...document.querySelectorAll('a')].filter(
                a => (a.getAttribute('href') || '').trim().toLowerCase().startsWith('javascript:')).length,
        })"""
    )
    assert injected == {"scripts": 0, "onerror": 0, "imgX": 0, "jsLinks": 0}
    session.screenshot("xss.png")


# -- LLM mode: tokens streaming into the page ------------------------------------------
@pytest.fixture(scope="module")
def llm_url(engine, settings):
    from pydantic import SecretStr

    from bot.answer import Engine
    from bot.app import launch

    fake = FakeOpenAI().start()
    own = settings.model_copy(
        update={"openai_base_url": fake.url, "openai_api_key": SecretStr("test-key"), "llm_model": "fake-model"}
    )
    demo, url = launch(own, host="127.0.0.1", port=free_port(), engine=Engine(own, store=engine.store))
    yield url, fake
    demo.close()
    fake.stop()


def test_llm_answer_streams_into_the_page_with_unverified_marks(browser, llm_url):
    url, fake = llm_url
    words = "We find that this boundary is fractal over more than ten decades of scale in all tested configurations"
    fake.play(Reply(text=f"{words} [1]. " * 3 + "The moon is made of green cheese [1]."))
    session = Session(browser, url)
    try:
        assert "Answer mode: llm (fake-model)" in session.page.inner_text("#header")
        answer = session.ask(FRACTAL, mode="llm (scripted server)")
        assert session.states >= 2  # text grew in the page before the answer was complete
        assert answer.count("unverified") == 1 and answer.index("green cheese") < answer.index("unverified")
        assert "unverified" in session.panel() and session.dialogs == []
    finally:
        session.close()


@pytest.fixture(scope="module", autouse=True)
def report_timings():
    """After this module's tests: the measured times go to the report, not into asserts."""
    yield
    if not TIMINGS:
        return
    rows = "\n".join(
        f"| {mode} | {question[:70]} | {first:.2f} s | {full:.2f} s |" for mode, question, first, full in TIMINGS
    )
    write_report_section(
        "browser",
        f"""## In the browser (tests/test_browser.py)
Headless Debian chromium via Playwright; times from pressing Enter to the first answer text in the
newest chat bubble (first token) and to the sources panel update that ends an answer (full answer),
measured in the page with a MutationObserver. Extractive mode computes the whole answer before the
first sentence goes out, so its two times nearly coincide; the LLM row streams from a scripted
OpenAI-protocol server on loopback (no model time), so it shows the UI's own streaming overhead.

| mode | question | first token | full answer |
|---|---|---|---|
{rows}
""",
    )
