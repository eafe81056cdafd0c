# Fixloop — two commands for a newcomer: `make run` and `make test`.
# Needs only Python 3.11+ and make; everything else is installed here (uv from PyPI, the rest by uv).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen
PROTOS := $(wildcard proto/fixloop/v1/*.proto)
BENCH_ORDERS ?= 2000
BENCH_RUNS ?= 1
BENCH_RATES ?= 1,10,25
BENCH_RATE_SECONDS ?= 20
BENCH_ARGS ?=
BENCH_GRPC_ARGS ?=
BENCH_DISPATCH_ARGS ?=
BENCH_EMERGENCY_ARGS ?=
CLOCKS ?= 1000000
BENCH_SLA_ARGS ?=
# Test processes (pytest-xdist); each starts its own broker and stores, a test module stays on one.
TEST_WORKERS ?= 2
NOTICES ?= 300
KILLS ?= 6
BENCH_NOTIFY_ARGS ?=

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	@echo "installing uv from PyPI ..."
	$(PYTHON) -m pip install --quiet --user uv 2>/dev/null \
	  || $(PYTHON) -m pip install --quiet --user --break-system-packages uv

.PHONY: uv
uv: $(UV)

.PHONY: sync
sync: $(UV) ## install the locked dependencies into .venv
	$(UV) sync --frozen --all-packages

.PHONY: run
run: sync ## start the whole platform on the embedded stack (Ctrl-C stops it)
	$(RUN) python -m fixloop_devkit.devstack run --data-dir .fixloop

.PHONY: lint
lint: sync ## ruff lint + format check, buf lint and breaking-change check on the protos
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) buf lint proto
	$(RUN) buf format --diff --exit-code proto --path proto/fixloop
	$(RUN) buf breaking proto --against proto/breaking-baseline.json

.PHONY: typecheck
typecheck: sync ## mypy --strict over every package and the tests
	$(RUN) mypy shared/src services/*/src tools/*/src tests bench

.PHONY: imports
imports: sync ## import contracts: services independent, shared imports no service, pure domain, no dev tooling in production code
	$(RUN) lint-imports

.PHONY: contracts-check
contracts-check: sync ## fail if generated event schemas / AsyncAPI are stale
	$(RUN) python -m fixloop_shared.schemas --check

.PHONY: test
test: lint typecheck imports contracts-check promtool ## everything CI runs: lint, types, imports, contracts, all tests
	$(RUN) pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: test-fast
test-fast: sync promtool ## unit tests only
	$(RUN) pytest tests/unit

.PHONY: promtool
promtool: ## install promtool (Debian package prometheus) for the alert-rule tests, if missing
	@command -v promtool >/dev/null && exit 0; \
	if command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
	  echo "installing promtool (Debian package prometheus) ..."; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  $$SUDO apt-get update -qq; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	else \
	  echo "promtool is missing: install Debian's prometheus package (apt-get install prometheus, as root) or put promtool on PATH" >&2; \
	  exit 1; \
	fi

.PHONY: fmt
fmt: sync ## format and autofix
	$(RUN) ruff format .
	$(RUN) ruff check --fix .
	$(RUN) buf format -w proto --path proto/fixloop

.PHONY: proto
proto: sync ## regenerate the gRPC Python code from proto/
	$(RUN) python -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto --grpc_python_out=proto $(PROTOS)

.PHONY: proto-baseline
proto-baseline: sync ## record the released partner contract that later changes must stay compatible with
	$(RUN) buf build proto --exclude-source-info -o proto/breaking-baseline.json

.PHONY: sdk
sdk: sync ## partner clients (Python, Go, TypeScript, Java) into clients/; needs buf.build
	$(RUN) buf generate --template buf.gen.yaml

.PHONY: sdk-python
sdk-python: sync ## the partner Python client into clients/python, offline
	$(RUN) buf generate --template buf.gen.python.yaml

.PHONY: descriptor
descriptor: sync ## the partner contract as a descriptor set for a release: dist/fixloop-v1.binpb
	mkdir -p dist
	$(RUN) buf build proto --path proto/fixloop --as-file-descriptor-set -o dist/fixloop-v1.binpb

.PHONY: schemas
schemas: sync ## regenerate docs/contracts (JSON Schemas + AsyncAPI)
	$(RUN) python -m fixloop_shared.schemas

.PHONY: bench
bench: sync ## benchmark the order pipeline (BENCH_ORDERS=2000 BENCH_RUNS=1 BENCH_RATES=1,10,25)
	$(RUN) python -m bench.pipeline --orders $(BENCH_ORDERS) --runs $(BENCH_RUNS) \
		--rates '$(BENCH_RATES)' --rate-seconds $(BENCH_RATE_SECONDS) $(BENCH_ARGS)

.PHONY: bench-grpc
bench-grpc: sync ## benchmark the partner gRPC API's reads against a bare grpc.aio echo (BENCH_RUNS=1)
	$(RUN) python -m bench.grpc_reads --runs $(BENCH_RUNS) $(BENCH_GRPC_ARGS)

.PHONY: bench-dispatch
bench-dispatch: sync ## benchmark the pure dispatch choice among 10,000 contractors in one region
	$(RUN) python -m bench.dispatch_choice $(BENCH_DISPATCH_ARGS)

.PHONY: bench-emergency
bench-emergency: sync ## benchmark 1,000 emergencies, each offered to 3 contractors, 2 accepting at once
	$(RUN) python -m bench.emergency_race $(BENCH_EMERGENCY_ARGS)

.PHONY: bench-sla
bench-sla: sync ## benchmark 1,000,000 SLA clocks: memory, 10,000 due in one second, restart (CLOCKS=1000000)
	$(RUN) python -m bench.sla_clocks --clocks $(CLOCKS) $(BENCH_SLA_ARGS)

.PHONY: bench-notify
bench-notify: sync ## benchmark receipt e-mails through repeated kill -9: duplicates, throughput (NOTICES=300 KILLS=6)
	$(RUN) python -m bench.notifications_kills --notices $(NOTICES) --kills $(KILLS) $(BENCH_NOTIFY_ARGS)

.PHONY: k8s-render
k8s-render: sync ## render the Kustomize overlays
	$(RUN) kubectl kustomize deploy/k8s/overlays/dev > /dev/null && echo "dev overlay renders"
	$(RUN) kubectl kustomize deploy/k8s/overlays/prod > /dev/null && echo "prod overlay renders"

.PHONY: clean
clean: ## remove local data and caches (not .venv)
	rm -rf .fixloop .pytest_cache .mypy_cache .ruff_cache .hypothesis
