# make test: set up .venv (if absent) and run the tests.  make demo: set up and start the studio.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-requirements

.PHONY: setup test demo bench world-sheet

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)

test: setup
	test -x /usr/bin/chromium || apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium) \
		|| echo "chromium could not be installed: tests/test_studio_browser.py will be skipped"
	$(PY) -m pytest -q

demo: setup
	$(PY) app.py

bench: setup
	$(PY) -m pip install --quiet SceneGraphParser==0.1.0
	$(PY) bench/run_all.py

world-sheet: setup
	$(PY) -m sd3core world sheet --split val --n 16 --out assets/world_sheet.png
