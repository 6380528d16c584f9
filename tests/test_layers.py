"""Layers go one way: a module imports only from modules below it, never from above."""

from __future__ import annotations

import ast
from pathlib import Path

import bridge

PACKAGE = Path(bridge.__file__).parent

# Lowest first. Subpackages count as one layer each.
ORDER = [
    "sanitize", "secrets", "errors", "options", "callbacks", "targets", "stdio", "transports", "repair", "wire",
    "resources", "decisions", "steps",
    "tasks", "task_calls", "session", "fast_validator", "schema", "catalogue", "results", "published",
    "inspection", "embeddings", "search", "profiles", "lock",
    "connection", "selection", "approval", "audit", "approvals", "server_requests", "telemetry",
    "code_limits", "guards", "registry",
    "routes", "deferred", "resource_tools", "code",
    "toolset", "adapters",
    "multimail", "server", "group",
    "autogen", "ag2", "metagpt", "agent_framework", "cli",
]
FRAMEWORKS = ("autogen", "ag2", "metagpt", "agent_framework")
# The one upward step allowed: Server and ServerGroup hand out AutoGen tools (the first-class target)
# by importing the adapter inside those methods, on first use.
LAZY_AUTOGEN = {"server", "group"}


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_layers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _layer(path)
    depth_to_root = len(path.relative_to(PACKAGE).parts) - 1
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level <= depth_to_root:
                continue  # within its own subpackage
            target = (node.module or "").split(".")[0]
            names = [target] if target else [alias.name for alias in node.names]
            found.update(n for n in names if n in ORDER and n != own)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bridge."):
            target = node.module.split(".")[1]  # type: ignore[union-attr]
            if target != own:
                found.add(target)
    return found


def test_every_module_has_a_layer() -> None:
    layers = {_layer(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert layers <= set(ORDER), layers - set(ORDER)


def test_no_module_imports_from_a_layer_above_it() -> None:
    violations = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "__init__.py":
            continue  # the public surface re-exports every layer
        own = ORDER.index(_layer(path))
        for target in _imported_layers(path):
            if target == "autogen" and _layer(path) in LAZY_AUTOGEN:
                continue
            if ORDER.index(target) > own:
                violations.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert not violations, violations


def test_no_adapter_imports_another() -> None:
    violations = []
    for framework in FRAMEWORKS:
        for path in (PACKAGE / framework).rglob("*.py") if (PACKAGE / framework).is_dir() else []:
            others = _imported_layers(path) & (set(FRAMEWORKS) - {framework})
            violations += [f"{path.relative_to(PACKAGE)} imports {o}" for o in sorted(others)]
    assert not violations, violations


def test_importing_the_core_loads_no_agent_framework() -> None:
    import subprocess
    import sys

    probe = ("import sys, bridge, bridge.schema, bridge.toolset, bridge.group, bridge.multimail; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'autogen', 'autogen_core', 'autogen_agentchat', 'autogen_ext', 'agent_framework', 'metagpt'}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_importing_the_root_loads_nothing_heavy() -> None:
    import subprocess
    import sys

    probe = ("import sys, bridge; print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'mcp', 'mcp_types', 'jsonschema', 'jsonschema_rs', 'anyio', 'rich', 'pydantic'}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
