# Thin wrapper: the real work is in scripts/ and CMake.
#   make run             install what is missing, build, start Postgres and Redis under .run/, migrate, serve on :8080
#   make test            the same in a throwaway directory, then every test
#   make bench           load scenarios against a release build; writes docs/performance.md
#   make fuzz            libFuzzer + sanitizers on every fuzz target, FUZZ_SECONDS (60) each
#   make fmt             clang-format every C file; make docs refreshes generated docs
#   make demo-violation  watch fences 2 and 3 refuse a trespass
#   make tour            a guided walk through the patterns, faults included (STEP=breaker: one step; ENV=.run: make run's Postgres and Redis)
#   make docker          the same system in containers (docker compose up --build)
#   make compose-test    drive the running compose stack, scaled out (scripts/compose-test)
#   make mutants [NAME=x] break each guarantee on purpose; its tests must fail (slow)
#   make test-tsan       integration, e2e and fault tests under ThreadSanitizer (slow)
SHELL := /bin/bash
.DEFAULT_GOAL := help
RUN_DIR := $(CURDIR)/.run
JOBS ?= $(shell nproc)

.PHONY: help bootstrap build build-release run stop test bench fuzz fmt demo-violation tour docs docker compose-test clean \
        mutants test-tsan

help:
	@sed -n '2,12p' Makefile | sed 's/^#//'

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev -j $(JOBS)

build-release: bootstrap
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

run: build-release
	@scripts/devenv start $(RUN_DIR) >/dev/null
	@source $(RUN_DIR)/env && BULKHEAD_MIGRATIONS_DIR=$(CURDIR)/migrations build/release/bulkhead migrate
	@# The secrets (JWT, webhook, ops token) are random per install, in
	@# $(RUN_DIR)/secrets/ (0600), exported by $(RUN_DIR)/env.
	@source $(RUN_DIR)/env && exec env BULKHEAD_MIGRATIONS_DIR=$(CURDIR)/migrations \
	    build/release/bulkhead serve

stop:
	@scripts/devenv stop $(RUN_DIR)

test: bootstrap
	@scripts/bootstrap --lint-tools
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev -j $(JOBS)
	@scripts/with-devenv scripts/run-tests

# Not part of `make test`: each mutant is a rebuild plus a test run.
mutants: bootstrap
	@scripts/mutants $(NAME)

test-tsan: bootstrap
	@scripts/test-tsan

bench: build-release
	@bench/run

FUZZ_SECONDS ?= 60
fuzz: bootstrap
	@FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) tests/fuzz/run

docs: build
	@scripts/gen-docs build/dev/bulkhead

fmt:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

demo-violation: bootstrap
	@cmake --preset dev >/dev/null && cmake --build --preset dev -j $(JOBS) >/dev/null
	@scripts/with-devenv bash -c 'BULKHEAD_MIGRATIONS_DIR=$$PWD/migrations build/dev/bulkhead migrate 2>/dev/null && scripts/demo-violation'

# The tour starts its own server and worker on free ports; with ENV=.run it
# uses make run's Postgres and Redis (stop make run's server first).
tour: build
	@scripts/tour $(if $(ENV),--env $(ENV)) $(STEP)

docker:
	docker compose up --build

# Needs the stack up (make docker, or docker compose up -d --build); minutes.
# Without a Docker engine it goes through podman's Docker API.
compose-test:
	@if [ -z "$${DOCKER_HOST:-}" ] && ! docker info >/dev/null 2>&1 && command -v podman >/dev/null; then \
	    scripts/container-podman scripts/compose-test; else scripts/compose-test; fi

clean:
	rm -rf build
