# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test lint typecheck demo bench bench-load fuzz conformance third-party metagpt postgres clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setup: upgrading pip in $(VENV)"
	@$(PY) -m pip install -q --upgrade pip > $(VENV)/pip.log 2>&1 || (tail -30 $(VENV)/pip.log >&2; exit 1)
	@echo "setup: installing every extra and the test tools (a few minutes the first time)"
	@# Build back-end chatter (setuptools' editable-install banner) goes to the log, shown only on failure.
	@$(PY) -m pip install -q -e ".[dev]" >> $(VENV)/pip.log 2>&1 || (tail -30 $(VENV)/pip.log >&2; exit 1)
	@$(PY) -c "import bridge, mcp, autogen_agentchat" || (echo "install failed" >&2; exit 1)
	@touch $(STAMP)

venv: $(STAMP)

# What the demo needs and no more (the core and AutoGen's OpenAI client), so a first `make demo`
# is quick; `make test` adds the rest. The script prints a line per step with the seconds so far.
DEMO_STAMP := $(VENV)/.installed-demo
$(DEMO_STAMP): pyproject.toml scripts/install_demo.sh
	@PYTHON=$(PYTHON) bash scripts/install_demo.sh
	@touch $(DEMO_STAMP)

# Pinned third-party MCP servers (npm, Node 22, PyPI venvs) into the git-ignored .third_party/.
third-party:
	@PYTHON=$(PYTHON) bash scripts/install_third_party.sh

# MetaGPT 0.8.2 in its own .venv-metagpt (its openai~=1.39 cannot share .venv), pinned by
# scripts/metagpt.requirements.txt, with an offline config; a no-op when nothing changed.
metagpt:
	@bash scripts/metagpt_env.sh

# PostgreSQL's server programs (initdb, postgres) for the PostgreSQL audit log, its tests and
# examples/distributed_team.py, which start a throwaway server of their own (fixtures/postgres.py).
postgres:
	@bash scripts/install_postgres.sh

# Lint and type checks run first (seconds, and they fail before the long installs); the official
# client conformance suite then runs (~2.5 min) before pytest, so pytest's summary closes the run.
test: lint third-party metagpt
	@bash scripts/install_postgres.sh
	@bash scripts/install_chromium.sh
	$(PY) scripts/conformance.py
	$(PY) -m pytest -q

# The main job, offline: an AutoGen team on the MultiMail stand-in, then the CLI (examples/demo.py).
demo: $(DEMO_STAMP)
	@$(PY) examples/demo.py

# The official MCP client conformance suite against tests/conformance/bridge_client.py, every
# scenario of spec 2025-11-25 and 2026-07-28 one at a time (~3 min; the suite's own parallel mode
# times out on small machines). Expected failures: tests/conformance/expected_failures.yml.
conformance: $(STAMP) third-party
	$(PY) scripts/conformance.py

lint: $(STAMP)
	$(VENV)/bin/ruff check bridge tests fixtures examples benchmarks scripts
	$(VENV)/bin/mypy bridge

# Long property-based run of the schema layer (make test runs a short one); FUZZ_EXAMPLES=N to tune.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q -p no:cacheprovider tests/test_fuzz_schema.py

# Benchmarks, loopback only and bounded: every benchmarks/bench_*.py through run_all.py (which
# also installs the autogen-ext comparison venv and prints the README's combined table, kept in
# bench-results/summary.md), then the load benchmark.
bench: $(STAMP) third-party
	$(PY) benchmarks/run_all.py
	$(PY) benchmarks/load.py --json bench-results/load.json

# The load benchmarks alone; LOAD_ARGS="--soak 600" for the 10-minute soak of the first. The second
# runs gRPC workers against one PostgreSQL audit table (DISTRIBUTED_ARGS="--workers 4 --calls 500").
bench-load: $(STAMP)
	$(PY) benchmarks/load.py --json bench-results/load.json $(LOAD_ARGS)
	@bash scripts/install_postgres.sh
	$(PY) benchmarks/load_distributed.py --json bench-results/load_distributed.json $(DISTRIBUTED_ARGS)

clean:
	rm -rf $(VENV) .third_party .data .pytest_cache .mypy_cache .ruff_cache
