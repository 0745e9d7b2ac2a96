"""The web page in a real browser: Debian's Chromium driven by Playwright, against a live server.

Screenshots go to ``test-artifacts/`` (gitignored) for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qa.api import create_app
from qa.config import Settings
from qa.service import QAService
from tests.helpers import CHROMIUM, CHROMIUM_ARGS
from tests.helpers import live_server as serve_in_thread

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
QUESTION = "Is the Sino-Russian relationship an alliance?"
UNANSWERABLE = "What is the boiling point of water at sea level?"

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium "
        "(apt-get install chromium; .ci/run does it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def live_server(essay_settings: Settings, essay_service: QAService) -> Iterator[str]:
    """uvicorn in a thread, serving the session's essay service on a free port."""
    with serve_in_thread(create_app(essay_settings, service=essay_service)) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def console_errors() -> list[str]:
    return []


def open_page(browser: Any, base: str, errors: list[str], **context: Any) -> Any:
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(15_000)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/")
    return page


def ask(page: Any, question: str) -> None:
    """Type into the focused box and press Enter, as a person would."""
    assert page.evaluate("document.activeElement.id") == "question"
    page.keyboard.type(question)
    page.keyboard.press("Enter")


def test_ask_cite_and_show_in_context(
    browser: Any, live_server: str, console_errors: list[str]
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    expected = httpx.post(f"{live_server}/ask", json={"question": QUESTION, "k": 5}).json()
    first = expected["passages"][0]
    page = open_page(browser, live_server, console_errors, viewport={"width": 1100, "height": 900})

    ask(page, QUESTION)
    page.wait_for_selector("#passages li")
    items = page.locator("#passages > li")
    assert items.count() == 5
    assert page.locator("#abstain").is_hidden()
    top = items.first
    assert top.locator(".rank").inner_text() == "#1"
    assert top.locator(".citation").inner_text() == first["citation"]["label"]
    assert top.locator("mark.quote").inner_text() == first["quote"]["text"]
    assert top.locator(".score").inner_text() == f"score {first['score']:.4f}"
    assert "?q=" in page.url
    page.screenshot(path=str(ARTIFACTS / "page-results.png"), full_page=True)

    top.get_by_role("button", name="Show in context").click()
    cited = page.locator("#doc-text mark#cited")
    cited.wait_for()
    assert cited.inner_text() == first["quote"]["text"]
    doc_id = first["citation"]["doc_id"]
    span = httpx.get(
        f"{live_server}/documents/{doc_id}",
        params={"start": first["quote"]["start"], "end": first["quote"]["end"]},
    ).json()["span"]
    assert cited.inner_text() == span["text"]
    assert page.locator("#doc-text mark").count() == 1
    assert page.locator("#doc-title").inner_text() == first["citation"]["title"]
    assert "doc=" in page.url and f"start={first['quote']['start']}" in page.url
    page.wait_for_function("document.activeElement && document.activeElement.id === 'cited'")
    in_view = (
        "m => { const r = m.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight }"
    )
    assert cited.evaluate(in_view), "the cited span is scrolled into view"
    page.screenshot(path=str(ARTIFACTS / "page-document.png"))

    page.get_by_role("button", name="Back to results").click()
    page.locator("#passages > li").first.wait_for()
    assert page.locator("#document").is_hidden()
    assert items.count() == 5
    assert console_errors == [], console_errors  # no CSP violations, no script errors


def test_unanswerable_question_says_so(
    browser: Any, live_server: str, console_errors: list[str]
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(browser, live_server, console_errors, viewport={"width": 1100, "height": 700})
    ask(page, UNANSWERABLE)
    message = page.locator("#abstain")
    message.wait_for(state="visible")
    assert "No passage in the collection answers this" in message.inner_text()
    assert page.locator("#passages > li").count() == 0
    page.screenshot(path=str(ARTIFACTS / "page-unanswerable.png"))

    page.locator("#question").fill("   ")
    page.locator("#question").press("Enter")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "Type a question" in error.inner_text()
    assert console_errors == [], console_errors


def test_readable_at_phone_width(browser: Any, live_server: str, console_errors: list[str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(
        browser,
        live_server,
        console_errors,
        viewport={"width": 375, "height": 812},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    ask(page, QUESTION)
    page.wait_for_selector("#passages li mark.quote")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page is {width}px wide at a 375px viewport"
    font = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.passage-text')).fontSize)"
    )
    assert font >= 14
    page.screenshot(path=str(ARTIFACTS / "page-375px.png"), full_page=False)
    page.locator("#passages > li").first.get_by_role("button", name="Show in context").click()
    page.locator("#doc-text mark#cited").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(ARTIFACTS / "page-375px-document.png"))
    assert console_errors == [], console_errors


def test_scope_a_question_to_one_document(
    browser: Any, live_server: str, console_errors: list[str]
) -> None:
    doc_id = "china-russia-relations-in-the-age-of-trump"
    page = open_page(browser, live_server, console_errors, viewport={"width": 1100, "height": 900})
    picker = page.locator("#scope")
    page.wait_for_function("document.querySelectorAll('#scope option').length === 2")
    assert picker.locator("option").all_inner_texts() == [
        "All documents",
        "Convergence and divergence: China-Russia relations in the age of Trump",
    ]
    picker.select_option(doc_id)
    page.locator("#question").focus()
    with page.expect_request(lambda r: r.url.endswith("/ask") and r.method == "POST") as sent:
        ask(page, QUESTION)
    assert sent.value.post_data_json["documents"] == [doc_id]
    page.wait_for_selector("#passages li")
    assert f"in={doc_id}" in page.url

    page.reload()  # the scope survives in the URL
    page.wait_for_selector("#passages li")
    page.wait_for_function(f"document.getElementById('scope').value === '{doc_id}'")

    page.goto(f"{live_server}/?q=alliance&in=nope")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "unknown document id 'nope'" in error.inner_text()
    console_errors[:] = [e for e in console_errors if "422" not in e]  # the refused request
    assert console_errors == [], console_errors
