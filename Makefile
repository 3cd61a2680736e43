# Two commands do all the set-up on a fresh machine:
#   make demo   - venv, install, the demo inputs, then the dashboard on :5006 at once while the
#                 pipeline fills it (one process group; Ctrl-C stops both)
#   make test   - venv, install, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= demo
EPOCHS ?= 5
PORT ?= 5006
PYTEST_ARGS ?=

.PHONY: venv demo demo-data demo-run demo-batch serve test clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo-data: venv
	$(BIN)/smcore demo-data $(DEMO_DIR)/data

demo-run: demo-data
	$(BIN)/smcore run --cmip6 $(DEMO_DIR)/data/cmip6 --era5 $(DEMO_DIR)/data/era5land \
		--workdir $(DEMO_DIR)/work --truth $(DEMO_DIR)/data/truth --epochs $(EPOCHS)

serve: venv
	$(BIN)/smcore serve --workdir $(DEMO_DIR)/work --port $(PORT)

# the dashboard answers as soon as the demo inputs exist; its tabs fill in as `smcore run` works
demo: venv
	$(BIN)/smcore demo $(DEMO_DIR) --epochs $(EPOCHS) --port $(PORT)

# the earlier sequence: the whole pipeline first, then the dashboard
demo-batch: demo-run serve

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
