# Two commands do everything on a fresh machine: `make demo` (the main job) and `make test` (CI: lint, then every
# test). Both run `make setup` first, which is idempotent and takes seconds when nothing changed.
# `make test-fast` is the inner loop: no ROS master, nothing marked slow (a few minutes).
SHELL := /bin/bash
IN_ENV := scripts/in-env
PYTEST_ARGS ?=

.PHONY: setup lint test test-fast demo

setup:
	@scripts/setup.sh

lint: setup
	@$(IN_ENV) ruff check

test: lint
	@$(IN_ENV) python -m pytest $(PYTEST_ARGS)

test-fast: lint
	@$(IN_ENV) python -m pytest -m "not ros and not slow" $(PYTEST_ARGS)

demo: setup
	@$(IN_ENV) python -m groot_ros demo
