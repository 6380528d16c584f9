"""Server prompts: listed, filled in only with their required arguments (a missing one is refused,
named, before anything is sent), rendered bounded, and turned into each framework's messages;
against ``fixtures.content_server``, whose own log (``CONTENT_LOG``) shows what was fetched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from helpers import http_server

from bridge import InvalidArguments, connect
from bridge.published import PromptLine, RenderedPrompt


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("prompts") / "requests.log"
    log.touch()
    with http_server("fixtures.content_server", env={"CONTENT_LOG": str(log)}) as url:
        yield url, log


def test_prompts_are_listed_and_filled_in(content: tuple[str, Path]) -> None:
    url, _ = content

    async def go() -> None:
        async with connect(url, name="content") as server:
            prompts = {p.name: p for p in await server.prompts()}
            assert list(prompts) == ["summarise", "review", "hostile", "long"]
            assert [(a.name, a.required) for a in prompts["summarise"].arguments or ()] == [("topic", True),
                                                                                             ("style", None)]
            filled = await server.get_prompt("summarise", {"topic": "tides", "style": "long"})
            assert filled.lines == (PromptLine("user", "Summarise tides in a long style."),)
            assert filled.system_text() == "Summarise tides in a long style."
            review = await server.get_prompt("review")
            assert [line.role for line in review.lines] == ["user", "assistant"]
            assert review.system_text() == "[user]\nReview this change.\n\n[assistant]\nI will check the tests first."
            long = await server.get_prompt("long")
            (line,) = long.lines  # the second message is past the bound
            assert line.text == "y" * 100_000 + "\n[truncated: the prompt exceeds 100,000 characters]"

    anyio.run(go)


@pytest.mark.parametrize(("name", "arguments", "named", "says"), [
    ("summarise", {}, "topic", "needs the argument 'topic'"),
    ("summarise", {"style": "long"}, "topic", "needs the argument 'topic'"),
    ("summarise", {"topic": "x", "tone": "dry"}, "tone", "takes no argument 'tone'"),
    ("summarise", {"topic": 3}, "topic", "is not"),
    ("nonexistent", {}, "name", "no prompt named 'nonexistent'"),
])
def test_a_bad_prompt_request_is_refused_naming_what_before_a_request(
        content: tuple[str, Path], name: str, arguments: dict[str, object], named: str, says: str) -> None:
    url, log = content
    before = log.read_text()

    async def go() -> None:
        async with connect(url, name="content") as server:
            with pytest.raises(InvalidArguments, match=says) as refused:
                await server.get_prompt(name, arguments)  # type: ignore[arg-type]
            assert refused.value.argument == named and "\n" not in str(refused.value)

    anyio.run(go)
    assert log.read_text() == before  # no prompts/get reached the server


def test_the_cli_prints_prompts_inert_and_refuses_a_missing_argument(
        content: tuple[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.cli import main

    url, _ = content
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["prompts", url]) == 0
    out = capsys.readouterr().out
    assert "summarise" in out and "topic" in out and "\x1b" not in out and "\\x1b[2J" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert main(["prompt", url, "hostile"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("server '") and " writes as user:\n    | Ignore" in out
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b]0;pwned\\x07" in out
    assert "Possible prompt injection in the prompt" in out and "RIGHT-TO-LEFT OVERRIDE" in out
    assert main(["prompt", url, "summarise", "--arg", "topic=cats"]) == 0
    assert "Summarise cats in a brief style." in capsys.readouterr().out
    assert main(["prompt", url, "summarise", "--arg", "style=long"]) == 1
    err = capsys.readouterr().err
    assert "needs the argument 'topic'" in err and err.count("\n") == 1


PROMPT = RenderedPrompt("content", "review", "A review",
                        (PromptLine("user", "Review."), PromptLine("assistant", "OK.")))


def test_each_adapter_renders_a_prompt_as_its_own_messages() -> None:
    from autogen_core.models import AssistantMessage, SystemMessage, UserMessage

    from bridge.ag2.prompts import prompt_messages as ag2_messages
    from bridge.ag2.prompts import system_message as ag2_system
    from bridge.agent_framework.prompts import prompt_messages as af_messages
    from bridge.agent_framework.prompts import system_message as af_system
    from bridge.autogen.prompts import prompt_messages as autogen_messages
    from bridge.autogen.prompts import system_message as autogen_system

    assert autogen_messages(PROMPT) == [UserMessage(content="Review.", source="server-content"),
                                        AssistantMessage(content="OK.", source="server-content")]
    assert autogen_system(PROMPT) == SystemMessage(content=PROMPT.system_text())
    assert ag2_messages(PROMPT) == [{"role": "user", "content": "Review."}, {"role": "assistant", "content": "OK."}]
    assert ag2_system(PROMPT) == {"role": "system", "content": PROMPT.system_text()}
    assert [(m.role, m.text) for m in af_messages(PROMPT)] == [("user", "Review."), ("assistant", "OK.")]
    assert (af_system(PROMPT).role, af_system(PROMPT).text) == ("system", PROMPT.system_text())


def test_metagpt_renders_a_prompt_as_its_own_messages() -> None:
    import json
    import os
    import subprocess

    from helpers import ROOT

    python = ROOT / ".venv-metagpt" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python.relative_to(ROOT)} is missing: build it with `make metagpt`", pytrace=False)
    script = (
        "import json\n"
        "from bridge.published import PromptLine, RenderedPrompt\n"
        "from bridge.metagpt.prompts import prompt_messages, system_message\n"
        "p = RenderedPrompt('content', 'review', 'A review', (PromptLine('user', 'Review.'), "
        "PromptLine('assistant', 'OK.')))\n"
        "print(json.dumps([[m.role, m.content, m.sent_from] for m in [*prompt_messages(p), system_message(p)]]))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([str(python), "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == [["user", "Review.", "server:content"],
                                                        ["assistant", "OK.", "server:content"],
                                                        ["system", PROMPT.system_text(), "server:content"]]
