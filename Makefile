# `make run` and `make test` do all set-up on a fresh Debian machine.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

.PHONY: run test setup system services lint bench clean

run: setup
	$(BIN)/vidwatch up

test: setup services
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

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var
