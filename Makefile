# Two commands from a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# re-install when any of these change
STAMP := $(VENV)/.mmext-installed

.PHONY: install demo test test-all clean-demo

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

clean-demo:
	rm -rf work_dirs/demo
