# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck demo bench fuzz conformance third-party clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v -i warning || true
	@$(PY) -m pip install -q -e ".[dev]" 2>&1 | grep -v -i warning || true
	@$(PY) -c "import bridge, mcp, autogen_agentchat" || (echo "install failed" >&2; exit 1)
	@touch $(STAMP)

venv: $(STAMP)

# Pinned third-party MCP servers (npm, Node 22, PyPI venvs) into the git-ignored .third_party/.
third-party:
	@PYTHON=$(PYTHON) bash scripts/install_third_party.sh

test: $(STAMP) third-party
	$(PY) -m pytest -q

# The main job, offline: the CLI against the MultiMail stand-in over stdio (examples/demo.py).
demo: $(STAMP)
	@$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check bridge tests fixtures examples
	$(VENV)/bin/mypy bridge

clean:
	rm -rf $(VENV) .third_party .data .pytest_cache .mypy_cache .ruff_cache
