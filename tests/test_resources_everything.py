"""Resources, templates and prompts of a real third-party server (server-everything over stdio): the
same core and the same guarded ``read_resource`` tool as against the bridge's own fixture."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from thirdparty import servers

from bridge import InvalidArguments, connect

pytestmark = [pytest.mark.thirdparty, pytest.mark.skipif(not servers.installed(), reason=servers.skip_reason() or "")]

STATIC = "demo://resource/static/document/architecture.md"


def test_everything_resources_templates_and_prompts(tmp_path: Path) -> None:
    launch = servers.SERVERS["everything"].launch(tmp_path)

    async def go() -> None:
        async with connect(launch.argv, env=launch.env, cwd=launch.cwd, name="everything") as server:
            uris = [r.uri for r in await server.resources()]
            assert STATIC in uris
            templates = [t.uri_template for t in await server.resource_templates()]
            assert "demo://resource/dynamic/text/{resourceId}" in templates
            assert (await server.read_resource(STATIC)).text.startswith(f"[resource <{STATIC}>]\n# Everything")
            dynamic = await server.read_resource("demo://resource/dynamic/text/1")
            assert dynamic.contents and dynamic.contents[0].uri == "demo://resource/dynamic/text/1"
            blob = await server.read_resource("demo://resource/dynamic/blob/1")
            assert "\n" not in blob.text and blob.text.startswith("[resource <demo://resource/dynamic/blob/1>: ")
            for refused in ("demo://resource/static/document/../../secret", "demo://resource/other/1"):
                with pytest.raises(InvalidArguments, match="refused to read"):
                    await server.read_resource(refused)

            prompts = {p.name: p for p in await server.prompts()}
            assert {"simple-prompt", "args-prompt"} <= set(prompts)
            with pytest.raises(InvalidArguments, match="needs the argument 'city'"):
                await server.get_prompt("args-prompt", {"state": "Oregon"})
            filled = await server.get_prompt("args-prompt", {"city": "Portland"})
            assert "Portland" in filled.system_text()

            toolset = server.toolset("reader", approval=False, warn_unguarded=False, include=["echo"],
                                     resources=["demo://resource/static/*"])
            (tool,) = [e for e in await toolset.tools() if e.name == "read_resource"]
            assert STATIC in tool.description and "dynamic" not in tool.description
            assert (await toolset.call("read_resource", {"uri": STATIC})).text.startswith(f"[resource <{STATIC}>]")
            with pytest.raises(InvalidArguments, match="outside this agent's resources"):
                await toolset.call("read_resource", {"uri": "demo://resource/dynamic/text/1"})

    anyio.run(go)
