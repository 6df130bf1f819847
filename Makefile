# Two commands from a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# re-install when any of these change
STAMP := $(VENV)/.mmext-installed

.PHONY: install demo test test-all test-peers clean-demo

$(STAMP): requirements.txt setup.py tools/install_deps.sh
	PYTHON=$(PYTHON) bash tools/install_deps.sh $(VENV)
	touch $(STAMP)

install: $(STAMP)

# trains + evaluates the demo detector on the embedded synthetic set, saves a picture
demo: $(STAMP)
	$(PY) tools/demo.py

# the test suite without the tests marked slow (those: `make test-all`)
test: $(STAMP)
	$(PY) -m pytest tests -m "not slow" -v -rs

test-all: $(STAMP)
	$(PY) -m pytest tests -v -rs

# --- peer suite (issue 17): converters vs the reference implementations (TF Model Garden ...).
# Its own venv: TensorFlow pulls numpy 2.x, which mmext's stack (mmpose/xtcocotools) cannot take.
PEERS_VENV ?= .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.peers-installed

$(PEERS_STAMP): requirements-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-peers.txt
	touch $(PEERS_STAMP)

# TF side runs in .venv-peers (checkpoints, reference outputs, the TF converter), the mmext side
# in .venv; plus the converter tests that need no TensorFlow (ESPNetv2, MixNet, darknet)
test-peers: $(STAMP) $(PEERS_STAMP)
	MMEXT_PEERS=1 MMEXT_PEERS_PYTHON=$(abspath $(PEERS_VENV))/bin/python \
		$(PY) -m pytest tests/peers tests/test_model_converters.py -v -rs

clean-demo:
	rm -rf work_dirs/demo
