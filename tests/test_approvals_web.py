"""``mcp-bridge approvals serve``: the reviewers' page, as a real process, in a real headless browser.

Without a token or with a wrong one nothing is shown and nothing decided (401); a forged
cross-site POST is refused; a hostile argument (HTML/JS, ANSI, CR, bidi) is shown as text and
runs nothing; a reviewer signed in with a token decides, and the decision names them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from helpers import status_of

from bridge.approvals import SqliteApprovalStore
from bridge.approvals.requests import request_for
from bridge.catalogue import Annotations
from bridge.connection import ToolCall

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "alice-token-" + "7" * 24
BOB_TOKEN = "bob-token-" + "5" * 24
CHROMEDRIVER = "/usr/bin/chromedriver"
HOSTILE = ("ceo@example.com\u202emoc.live@\u200b\x1b[2K\r"
           "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">")


def submit(db: Path, to: str, count: int = 1, **more: str) -> int:
    """Put ``count`` requests to ``to`` on the queue; the last one's id."""
    async def go() -> int:
        store = SqliteApprovalStore(db)
        try:
            call = ToolCall(server="mail", tool="send_email", mcp_name="send_email", arguments={"to": to, **more},
                            annotations=Annotations(destructive=True), agent="drafter")
            for _ in range(count):
                last = await store.submit(request_for(call, expires_after=600), duplicate_window=3600)
            return last.id
        finally:
            await store.aclose()

    return anyio.run(go)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The page serving a fresh store, with one hostile request; yields (base URL, store)."""
    db = tmp_path / "approvals.db"
    submit(db, HOSTILE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "approvals", "serve", "--store", str(db), "--port", "0"], cwd=ROOT,
        text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MCP_BRIDGE_REVIEWERS": f"alice {TOKEN}\nbob {BOB_TOKEN}"})
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"LISTENING (http://\S+)/", line)
        assert found, line
        yield found.group(1), db
    finally:
        proc.terminate()
        proc.wait(60)
        assert proc.stderr is not None
        assert TOKEN not in proc.stderr.read()  # the token is never echoed


def test_no_token_or_a_wrong_one_is_401_and_decides_nothing(page: tuple[str, Path]) -> None:
    base, db = page
    with httpx2.Client(base_url=base, timeout=30) as client:
        assert client.get("/").status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer wrong-token-0000000000"}).status_code == 401
        assert client.post("/requests/1/decide", data={"decision": "approve"},
                           headers={"Origin": base}).status_code == 401
        assert client.post("/requests/1/decide", data={"decision": "approve"},
                           headers={"Origin": base, "Authorization": "Bearer nope-nope-nope-nope"}).status_code == 401
        assert client.post("/login", data={"token": "guess-guess-guess-guess"},
                           headers={"Origin": base}).status_code == 401
    assert status_of(db, 1) == ("pending", None)


def test_the_page_masks_what_it_knows_is_secret_by_value(page: tuple[str, Path]) -> None:
    # The agent masked the secrets it knew; another reviewer's token is one only the page knows.
    base, db = page
    submit(db, f"ops@example.com {BOB_TOKEN}", **{f"note {BOB_TOKEN}": "x"})
    with httpx2.Client(base_url=base, timeout=30) as client:
        html = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert "ops@example.com ***" in html and "note ***" in html
    assert BOB_TOKEN not in html and "5" * 24 not in html


def test_with_more_pending_than_a_page_holds_the_oldest_are_shown(page: tuple[str, Path]) -> None:
    # The oldest expire first: a page of the newest would hide them until they expired unseen.
    base, db = page
    assert submit(db, "bob@example.com", count=200) == 201
    with httpx2.Client(base_url=base, timeout=30) as client:
        html = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'id="request-1"' in html and 'id="request-200"' in html and 'id="request-201"' not in html
    assert "More than 200 requests wait" in html


def test_a_forged_cross_site_post_is_refused(page: tuple[str, Path]) -> None:
    base, db = page
    with httpx2.Client(base_url=base, timeout=30) as client:
        assert client.post("/login", data={"token": TOKEN}, headers={"Origin": base}).status_code == 303
        html = client.get("/").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert csrf
        forged = {"decision": "approve", "csrf": csrf.group(1)}
        # Another site's form (even knowing the token: it cannot read it, but suppose it could).
        assert client.post("/requests/1/decide", data=forged,
                           headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}).status_code == 403
        assert client.post("/requests/1/decide", data=forged,
                           headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
        # Same origin but without the session's CSRF token.
        assert client.post("/requests/1/decide", data={"decision": "approve", "csrf": "x"},
                           headers={"Origin": base}).status_code == 403
        assert status_of(db, 1) == ("pending", None)
        assert client.post("/requests/1/decide", data=forged, headers={"Origin": base}).status_code == 303
    assert status_of(db, 1) == ("approved", "alice")


def test_the_page_in_a_real_browser_shows_a_hostile_argument_inert_and_decides(page: tuple[str, Path]) -> None:
    if not os.access(CHROMEDRIVER, os.X_OK):
        pytest.fail("chromium-driver is missing: run scripts/install_chromium.sh", pytrace=False)
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, db = page
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        browser.set_page_load_timeout(60)
        browser.implicitly_wait(30)  # a hang guard: elements appear once the page has loaded
        browser.get(base + "/")
        assert "Reviewer token" in browser.page_source
        browser.find_element(By.NAME, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        arguments = browser.find_element(By.CSS_SELECTOR, "#request-1 pre.arguments").text
        assert browser.execute_script("return window.__pwned === undefined")  # no script of theirs ran
        assert "<script>window.__pwned = 1</script>" in arguments  # shown as text
        assert "\\u202e" in arguments and "\\u200b" in arguments and "\\u001b" in arguments
        assert "\u202e" not in arguments and "\u200b" not in arguments
        assert browser.execute_script("return document.querySelectorAll('#request-1 img').length") == 0
        assert "signed in as alice" in browser.find_element(By.ID, "who").text
        browser.find_element(By.CSS_SELECTOR, "#request-1 input[name='reason']").send_keys("not that recipient")
        browser.find_element(By.CSS_SELECTOR, "#request-1 button[value='deny']").click()
        # The form posts and the page reloads: read the new page, not the one being left.
        WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda driver: "Nothing waits." in driver.find_element(By.ID, "pending").text)
        assert "not that recipient" in browser.find_element(By.ID, "recent").text
        assert browser.execute_script("return window.__pwned === undefined")
    finally:
        browser.quit()
    assert status_of(db, 1) == ("denied", "alice")
