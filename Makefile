# tidemark — every entry point a developer or CI needs. `make test` is the one command CI runs.

SERVICES := deploy/local/services.sh
NPM_STAMP := node_modules/.tidemark-installed
RESULTS := .tidemark/test-results.json

.PHONY: help setup up down status demo run test test-unit test-integration lint typecheck build bench faults clean

DURATION ?= 30
RATE ?= 200
FAULTS ?= 54
OUTAGE_SECONDS ?= 60
FAULT_RATE ?= 100

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 20

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

setup: $(NPM_STAMP) ## install npm packages and the local servers (once, into ~/.cache/tidemark)
	$(SERVICES) install

up: setup ## start MariaDB, Kafka, FerretDB and MinIO on loopback
	$(SERVICES) up

down: ## stop the local servers this project started
	$(SERVICES) down

status: ## show the local servers
	$(SERVICES) status

demo: up ## the whole job on the local servers: live chat traffic, an accident, its restore (DURATION=30 RATE=200)
	DURATION=$(DURATION) RATE=$(RATE) NODE_OPTIONS=--no-warnings npx tsx deploy/demo/demo.ts

run: up ## capture, tier and scheduler in the foreground until Ctrl-C (CONFIG=<file>, default: the demo's)
	CONFIG=$(CONFIG) NODE_OPTIONS=--no-warnings npx tsx deploy/demo/run.ts

typecheck: $(NPM_STAMP) ## strict TypeScript check of code and tests
	npx tsc -p tsconfig.json --noEmit

build: $(NPM_STAMP) ## compile to dist/ (the `tidemark` bin)
	npx tsc -p tsconfig.build.json

test-unit: $(NPM_STAMP) ## unit tests only (no servers needed)
	npx vitest run --project unit

test-integration: up ## integration tests against the local servers
	npx vitest run --project integration

test: up typecheck ## everything: install, start the servers, typecheck, unit and integration tests
	@mkdir -p $(dir $(RESULTS))
	npx vitest run --reporter=default --reporter=json --outputFile.json=$(RESULTS)
	@node -e 'const r=require("./$(RESULTS)");console.log(`$${r.numPassedTests} passed, $${r.numFailedTests} failed, $${r.numPendingTests+r.numTodoTests} skipped`)'

lint: $(NPM_STAMP) ## ESLint and Prettier
	npx eslint .
	npx prettier --check .

faults: up ## the fault-injection suite in full and its table (FAULTS=54 OUTAGE_SECONDS=60 FAULT_RATE=100)
	FAULTS=$(FAULTS) OUTAGE_SECONDS=$(OUTAGE_SECONDS) RATE=$(FAULT_RATE) NODE_OPTIONS=--no-warnings npx tsx test/faults/run.ts

bench: up ## benchmarks under test/bench/, each printed beside its in-run baseline
	npx tsx test/bench/run.ts $(BENCH)

clean: ## remove build output (not the server cache or data)
	rm -rf dist .tidemark
