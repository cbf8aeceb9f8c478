# Two commands for a new user (README): `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO := data/demo
WAREHOUSE ?= sqlite:///data/warehouse.sqlite
PORT ?= 8501

.PHONY: run test venv venv-dev demo etl dashboard system-deps lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

venv: $(VENV)/.run-deps
venv-dev: $(VENV)/.dev-deps

$(DEMO)/sources.yaml: | $(VENV)/.run-deps
	$(BIN)/python -m etl demo --out $(DEMO) --scale small --years 2

demo: $(DEMO)/sources.yaml

etl: demo
	$(BIN)/python -m etl run --sources $(DEMO)/sources.yaml --warehouse $(WAREHOUSE)

dashboard:
	@$(BIN)/python -m dashboard.demo_logins $(DEMO)
	WAREHOUSE_URL=$(WAREHOUSE) $(BIN)/streamlit run dashboard/app.py --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

# Sets up, generates the demo if missing, loads it, starts the dashboard.
run: venv etl dashboard

# System packages the test suite uses (Debian): headless Chromium with CJK
# fonts for the browser tests, LibreOffice and poppler for the workbook tests.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
	dpkg -s libreoffice-calc >/dev/null 2>&1 || missing="$$missing libreoffice-calc"; \
	dpkg -s libreoffice-writer >/dev/null 2>&1 || missing="$$missing libreoffice-writer"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: venv-dev system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

lint: venv-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

format: venv-dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: venv-dev
	$(BIN)/python bench/etl_load.py --scale city

clean:
	rm -rf $(DEMO) data/warehouse.sqlite*
