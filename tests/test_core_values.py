"""The core's values: Options and Guards declared once, carried whole through component dumps."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from autogen_core import CancellationToken, ComponentLoader
from helpers import fixture_env, module_cmd

from bridge import AutoApprove, ConfigError, Guards, Options, connect
from bridge.autogen import MCPTool, MCPWorkbench
from bridge.lock import LockFile, ServerPin
from bridge.registry import close_shared_connections
from bridge.resources import Resources
from bridge.secrets import evidence, log_mask, mask_data

pytestmark = pytest.mark.anyio


def test_options_defaults_live_in_one_place() -> None:
    opts = Options()
    assert (opts.timeout, opts.call_timeout, opts.mode, opts.reconnect_attempts) == (30.0, 180.0, "auto", 3)
    assert Options.of(None, call_timeout=5).call_timeout == 5
    with pytest.raises(ConfigError, match="unknown connection option 'call_timout'"):
        Options.of(None, call_timout=5)
    with pytest.raises(ConfigError, match="lock policy 'loose'"):
        Options(lock_policy="loose")  # type: ignore[arg-type]
    assert Options.from_config(Options(prefix="m", lock="x.lock", lock_policy="strict").to_config()) == Options(
        prefix="m", lock="x.lock", lock_policy="strict")
    assert opts.exit_grace == 2.0
    assert Options.from_config(Options(exit_grace=0.5).to_config()) == Options(exit_grace=0.5)
    with pytest.raises(ConfigError, match="exit_grace must be 0 or more seconds, not -1"):
        Options(exit_grace=-1)
    with pytest.raises(ConfigError, match="reconnect_backoff must be 0 or more seconds, not 'soon'"):
        Options(reconnect_backoff="soon")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="call_timeout must be a positive number of seconds, not 0"):
        Options(call_timeout=0)


def test_live_options_refuse_to_be_written_down() -> None:
    async def progress(*_: object) -> None:
        return None

    with pytest.raises(ValueError, match="on_progress"):
        Options(on_progress=progress).to_config()
    with pytest.raises(ValueError, match="LockFile object"):
        Options(lock=LockFile()).to_config()


def test_guards_round_trip_and_name_unknown_keys(tmp_path: Path) -> None:
    guards = Guards(include=["check_*"], read_only=True, approver=AutoApprove("ci"), audit=tmp_path / "a.jsonl",
                    catalogue="deferred", always=["check_inbox"])
    again = Guards.from_config(json.loads(json.dumps(guards.to_config())))
    assert again.to_config() == guards.to_config()
    assert [type(i).__name__ for i in again.open(Resources()).chain if not type(i).__name__.startswith("Telemetry")
            ] == ["ApprovalGate", "AuditTrail"]
    assert again.selection is not None and again.selection.include == ("check_*",)
    with pytest.raises(ConfigError, match="unknown guard option 'readonly'"):
        Guards.of(None, readonly=True)
    with pytest.raises(ConfigError, match="approval=False"):
        Guards(approval=False, approver=AutoApprove())


async def test_a_reloaded_tool_and_workbench_keep_their_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every env value is dumped as a ${VAR} reference, so the loading side must have it set.
    monkeypatch.setenv("PYTHONPATH", fixture_env()["PYTHONPATH"])
    cmd = module_cmd("fixtures.schema_zoo")
    lock_path = tmp_path / "mcp.lock"
    async with connect(cmd, env=fixture_env()) as zoo:
        listing = await zoo.session.list_tools()
        # Every tool pinned as listed, but "stats" with another description: drift.
        pinned = [t.model_copy(update={"description": "what it said last week"}) if t.name == "stats" else t
                  for t in listing]
        LockFile({zoo.name: ServerPin.of(pinned)}).save(lock_path)
    async with connect(cmd, env=fixture_env(), lock=lock_path) as zoo:
        assert "stats" in zoo.withheld
        tool = (await zoo.tools_for("a", include=["empty_input"], approval=False))[0]
        bench = zoo.workbench_for("b", include=["empty_input", "stats"], approval=False)
        tool_config, bench_config = tool.dump_component(), bench.dump_component()
    assert tool_config.config["servers"][0]["options"] == {"lock": str(lock_path)}
    loaded_bench = ComponentLoader.load_component(bench_config, MCPWorkbench)
    loaded_tool = ComponentLoader.load_component(tool_config, MCPTool)
    try:
        names = [t["name"] for t in await loaded_bench.list_tools()]
        assert names == ["empty_input"]  # the drifted tool stays withheld after the reload
        result = await loaded_bench.call_tool("stats", {})
        assert result.is_error and "withheld by the lock file" in result.to_text()
        await loaded_tool.run_json({}, CancellationToken())
        assert set(loaded_tool.toolset.connections[0].withheld) == {"stats"}
    finally:
        await loaded_bench.stop()
        await close_shared_connections()


def test_json_escaped_secrets_are_masked_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = 'p@ss"w/ord\\42'
    logger = logging.getLogger("bridge.test")  # module loggers exist before any session opens
    log_mask.add([secret])
    try:
        with caplog.at_level(logging.INFO, logger="bridge.test"):
            logger.info("body %s", json.dumps({"token": secret}))
        assert secret not in caplog.text and json.dumps(secret)[1:-1] not in caplog.text
        assert '{"token": "***"}' in caplog.text
    finally:
        log_mask.remove([secret])


def test_multimail_key_shapes_are_registered_by_the_multimail_package() -> None:
    import bridge.multimail  # noqa: F401 - registers the key shapes

    assert mask_data({"note": "mm_live_abcdefghijkl", "n": 1}) == {"note": evidence("mm_live_abcdefghijkl", "mm_"),
                                                                   "n": 1}


def test_a_reloaded_audit_trail_keeps_its_redaction_and_worker(tmp_path: Path) -> None:
    from bridge.audit import AuditTrail, open_audit_log

    trail = AuditTrail(open_audit_log(tmp_path / "a.jsonl"), redact_keys="^customer_ref$", worker="w7")
    again = Guards.from_config(json.loads(json.dumps(Guards(audit=trail).to_config())))
    loaded = again.audit
    assert isinstance(loaded, AuditTrail)
    assert (loaded.redact_keys, loaded.worker) == ("^customer_ref$", "w7")


async def test_calls_before_and_after_a_reconnect_do_not_make_the_sdk_relist_or_warn(
        caplog: pytest.LogCaptureFixture) -> None:
    import os
    import signal

    import anyio
    from helpers import children_of

    # 250 tools in pages of 100: the last one is on page three, which the SDK's own lookup never reads.
    async with connect(module_cmd("fixtures.bench_server", "--tools", "250", "--page-size", "100"),
                       env=fixture_env()) as zoo:
        last = list(await zoo.catalogue())[-1].name
        with caplog.at_level(logging.DEBUG):
            await zoo.call_checked(last, {"query": "first"})
        first = set(children_of(os.getpid()))
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        with anyio.fail_after(30):  # until the session saw the death (not a measurement)
            while zoo.session._gen is not None and zoo.session._gen.alive:
                await anyio.sleep(0.05)
        with caplog.at_level(logging.DEBUG):
            for _ in range(3):
                assert not (await zoo.call(last, {"query": "again"})).is_error
        assert set(children_of(os.getpid())).isdisjoint(first)  # a new server process answered
    assert "cannot validate" not in caplog.text and "not listed by server" not in caplog.text
