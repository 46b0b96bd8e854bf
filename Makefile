# Two commands do everything on a fresh machine: `make demo` (the main job) and `make test`.
# Both run `make setup` first, which is idempotent and takes seconds when nothing changed.
SHELL := /bin/bash
IN_ENV := scripts/in-env
PYTEST_ARGS ?=

.PHONY: setup test demo

setup:
	@scripts/setup.sh

test: setup
	@$(IN_ENV) python -m pytest $(PYTEST_ARGS)

demo: setup
	@$(IN_ENV) python -m groot_ros demo
