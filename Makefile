# `make run` and `make test` do all set-up on a fresh Debian machine.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: run test setup system services lint bench clean

run: setup
	$(BIN)/vidwatch up

# lint first: a type error or a too-complex function fails before the suite runs
test: lint services
	scripts/setup-system.sh --for-tests
	$(BIN)/pytest

setup: $(VENV)/.installed system

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# ffmpeg, and redis-server / rabbitmq-server where nothing answers on their ports
system:
	scripts/setup-system.sh

# `make test` needs Redis and RabbitMQ answering at the default URLs
services:
	scripts/ensure-services.sh

# ruff (style, complexity: C901 at [tool.ruff.lint.mccabe]) and mypy (with the pydantic plugin)
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var
