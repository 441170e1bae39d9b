# One command to set up and run the app, one to set up and run the tests (README).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: run test setup browser clean

run: setup
	$(BIN)/python app.py

test: setup browser
	$(BIN)/python -m pytest

setup: $(STAMP)

# torch is pinned and installed first: it takes the local CPU build instead of gigabytes of CUDA.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m qa.embedding --export  # the ONNX copy of the embedded model, checked against torch
	touch $(STAMP)

# Debian's Chromium for the real-browser tests (the playwright browser download does not work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will fail"; }

clean:
	rm -rf $(VENV) index/versions index/CURRENT
