"""The team examples run unattended on the approval queue: the drafter's reply waits there until a
reviewer decides (the CLI, or the web page in a real headless browser), then the team resumes and
MultiMail's own ``gated_send`` hold follows as before."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import pytest
from helpers import PY, ROOT

from bridge.approvals import SqliteApprovalStore
from bridge.audit import query as query_audit

EXAMPLES = ROOT / "examples"
HANG = 240.0
TOKEN = "lead-token-" + "5" * 24
CHROMEDRIVER = "/usr/bin/chromedriver"


def offline_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}


def queue_of(db: Path) -> list[tuple[str, str, str, str | None, bool]]:
    async def go() -> list[tuple[str, str, str, str | None, bool]]:
        store = SqliteApprovalStore(db)
        try:
            return sorted((r.agent or "", r.tool, r.status, r.reviewer, r.consumed is not None)
                          for r in await store.list())
        finally:
            await store.aclose()

    return anyio.run(go)


def test_the_email_team_waits_in_the_queue_and_a_cli_reviewer_lets_it_resume(tmp_path: Path) -> None:
    db = tmp_path / "approvals.db"
    done = subprocess.run([PY, str(EXAMPLES / "email_team.py"), "--workdir", str(tmp_path), "--approvals", str(db)],
                          cwd=ROOT, env=offline_env(), capture_output=True, text=True, timeout=HANG,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.count("(scripted reviewer) $ mcp-bridge approvals approve") == 2
    assert "wait_for_decision: sent (approved=True)" in out and "Delivered to jonas.berg@fjord.example" in out
    assert queue_of(db) == [("contacts", "add_contact", "approved", "team-lead", True),
                            ("drafter", "reply_email", "approved", "team-lead", True)]
    decided = {(r.agent, r.tool): (r.decision, r.reviewer) for r in query_audit(tmp_path / "audit.jsonl")}
    assert decided[("drafter", "reply_email")] == ("approved", "team-lead")


def test_the_email_team_is_approved_from_the_web_page(tmp_path: Path) -> None:
    if not os.access(CHROMEDRIVER, os.X_OK):
        pytest.fail("chromium-driver is missing: run scripts/install_chromium.sh", pytrace=False)
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    db = tmp_path / "approvals.db"
    assert queue_of(db) == []  # the reviewers' page serves an existing queue only
    # Files, not pipes: nobody reads the team's output until it ends, and a full pipe would stall it.
    team_out, team_err = (tmp_path / "team.out").open("w+"), (tmp_path / "team.err").open("w+")
    team = subprocess.Popen([PY, str(EXAMPLES / "email_team.py"), "--workdir", str(tmp_path), "--approvals", str(db),
                             "--wait-for-reviewer"], cwd=ROOT, env=offline_env(), stdin=subprocess.DEVNULL,
                            stdout=team_out, stderr=team_err, text=True)
    page = subprocess.Popen([sys.executable, "-m", "bridge.cli", "approvals", "serve", "--store", str(db),
                             "--port", "0"], cwd=ROOT, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "MCP_BRIDGE_REVIEWERS": f"lead {TOKEN}"})
    browser = None
    try:
        assert page.stderr is not None
        found = re.search(r"LISTENING (http://\S+)/", page.stderr.readline())
        assert found
        # The page logs every request: keep draining its stderr so a full pipe never stalls it.
        threading.Thread(target=page.stderr.read, daemon=True).start()
        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
            options.add_argument(flag)
        options.binary_location = "/usr/bin/chromium"
        browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        browser.set_page_load_timeout(60)
        home = found.group(1) + "/"
        browser.get(home)
        browser.find_element(By.NAME, "token").send_keys(TOKEN)
        browser.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        # Signed in before the first poll: a GET during the login's POST would abort it, and the
        # sign-in page has no #pending (NoSuchElementException, which WebDriverWait ignores: a hang).
        WebDriverWait(browser, HANG).until(lambda driver: driver.find_elements(By.ID, "who"))
        for tool in ("reply_email", "add_contact"):  # the reply, then (once the team resumed) the contact
            def approved(driver: webdriver.Chrome, tool: str = tool) -> bool:
                # The page reloads itself every few seconds; a click that lands during a reload is
                # lost, so click again until the store shows the decision.
                if any(t == tool and status == "approved" for _, t, status, *_ in queue_of(db)):
                    return True
                if team.poll() is not None:
                    raise AssertionError(f"the team exited early: {team_err.read()[-3000:]}")
                try:
                    # A GET of the page, not refresh(): after a form's POST that answered with an
                    # error page, a refresh would post the form again.
                    driver.get(home)
                except TimeoutException as e:
                    # The page's own reload (or the last click's redirect) started a navigation
                    # meanwhile, and chromedriver gave this one up: poll again.
                    if "aborted by navigation" not in str(e.msg):
                        raise
                    return False
                if tool in driver.find_element(By.ID, "pending").text:
                    driver.find_element(By.CSS_SELECTOR, "#pending button[value='approve']").click()
                return False
            WebDriverWait(browser, HANG, poll_frequency=0.5,
                          ignored_exceptions=(StaleElementReferenceException,)).until(approved)
        team.wait(timeout=HANG)
    finally:
        if browser is not None:
            browser.quit()
        page.terminate()
        page.wait(60)
        if team.poll() is None:
            team.kill()
            team.wait()
    out, err = (tmp_path / "team.out").read_text(), (tmp_path / "team.err").read_text()
    team_out.close()
    team_err.close()
    assert team.returncode == 0, err[-3000:]
    assert "wait_for_decision: sent (approved=True)" in out
    assert queue_of(db) == [("contacts", "add_contact", "approved", "lead", True),
                            ("drafter", "reply_email", "approved", "lead", True)]


def test_the_distributed_team_waits_in_a_shared_queue(tmp_path: Path) -> None:
    db = tmp_path / "approvals.db"
    done = subprocess.run([PY, str(EXAMPLES / "distributed_team.py"), "--workdir", str(tmp_path),
                           "--approvals", str(db)], cwd=ROOT, env=offline_env(), capture_output=True, text=True,
                          timeout=360, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for line in ("[drafter on w2]", "held in MultiMail's gated_send queue", "wait_for_decision: sent (approved=True)",
                 "(scripted reviewer) $ mcp-bridge approvals approve"):
        assert line in out, line
    assert queue_of(db) == [("contacts", "add_contact", "approved", "team-lead", True),
                            ("drafter", "reply_email", "approved", "team-lead", True)]
