# One task runner. `make demo` runs the main job, `make test` the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: provision lock demo test test-core test-slow lint typecheck check docs broker bench bench-quick fuzz clean

# Dependencies come from the lock file, hashes checked; the project itself on top, editable.
$(STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

lock: $(STAMP)  ## re-resolve requirements.lock (the image) and requirements-dev.lock (make, CI) from pyproject.toml
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --universal --generate-hashes --python-version 3.11 -q \
		--custom-compile-command "make lock" -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --universal --generate-hashes --python-version 3.11 -q \
		--custom-compile-command "make lock" --extra dev --extra bench -o requirements-dev.lock

demo: $(STAMP)  ## the main job: local broker (unless LAUNCHRELAY_BOOTSTRAP_SERVERS is set), topics, exchange
	$(BIN)/launchrelay demo

provision:  ## the tests' tools from Debian when missing (java, maven, openssl, npm, promtool); needs root or sudo
	bash scripts/provision-debian.sh

# Two workers, each with its own session broker, a test file to one worker (module fixtures stay whole); every
# shared download (broker and MirrorMaker 2 jars, the schema tools) is fetched first, so no two workers race for it.
TEST_WORKERS ?= 2

test: provision $(STAMP)  ## the whole suite against a real broker (provisioned from Maven Central when needed)
	$(BIN)/launchrelay broker fetch >/dev/null
	$(BIN)/launchrelay link fetch >/dev/null
	$(BIN)/python tests/schemas.py
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

test-core: $(STAMP)  ## the tests that need no broker: the pure core, the contract, the docs (about a minute)
	$(BIN)/pytest -m "not kafka"

test-slow: provision $(STAMP)  ## the long crash and soak runs only (minutes each)
	$(BIN)/launchrelay broker fetch >/dev/null
	$(BIN)/launchrelay link fetch >/dev/null
	$(BIN)/pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

docs: $(STAMP)  ## regenerate docs/schema and docs/reasons.md from the code
	$(BIN)/launchrelay docs --out docs

broker: $(STAMP)  ## a local broker in the foreground (Ctrl-C stops it)
	$(BIN)/launchrelay broker run

bench: $(STAMP)  ## full benchmark: figures into bench/results/ (about 50 minutes; variants alternate over 3 rounds)
	$(BIN)/python -m bench.run --mode full
	$(BIN)/python -m bench.hostile --repeat 20
	$(BIN)/python -m bench.cpu
	$(BIN)/python -m bench.fairness --rounds 3
	$(BIN)/python -m bench.tracker_scale --levels 0,100000,1000000
	$(BIN)/python -m bench.soak --minutes 10 --rate 100
	$(BIN)/python -m bench.soak --minutes 5 --rate 100 --horizon PT1M
	$(BIN)/python -m bench.failover --kills 3
	$(BIN)/python -m bench.two_centres
	$(BIN)/python -m bench.console_load --rounds 3
	$(BIN)/python -m bench.decision_log --rounds 3

bench-quick: $(STAMP)  ## every variant for a few seconds; no figures worth quoting
	$(BIN)/python -m bench.run --mode quick

FUZZ_SECONDS ?= 60
fuzz: $(STAMP)  ## coverage-guided fuzzing of decide() for FUZZ_SECONDS (default 60); crashes saved under .launchrelay/
	mkdir -p .launchrelay/fuzz-corpus
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python fuzz/fuzz_decide.py -max_len=4096 \
		-artifact_prefix=.launchrelay/fuzz- .launchrelay/fuzz-corpus

clean:
	rm -rf $(VENV) .launchrelay .pytest_cache .mypy_cache .ruff_cache
