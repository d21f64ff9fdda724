# Prescripto developer targets. `make help` lists them.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO ?= go
GOBIN_DIR := $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)

# bench: time per benchmark (per sub-benchmark) and repetitions. The
# command-path benchmarks need a few minutes in all on 2 cores at these
# settings; BENCHTIME=1s BENCHCOUNT=1 is a quick look.
BENCHTIME ?= 2s
BENCHCOUNT ?= 5
BENCHPKGS ?= ./eventstore/sqlite/ ./commands/
BENCHSTAT ?= $(shell command -v benchstat 2>/dev/null || echo $(GOBIN_DIR)/benchstat)

# load: where the server listens (loopback only) and what the generator does.
LOAD_ADDR ?= 127.0.0.1:18480
LOAD_LOG_LEVEL ?= info
LOAD_FLAGS ?= -scenarios book,slots,storm,lag -book-rate 2000 -book-duration 10s -slots-rate 15000 -slots-duration 10s -lag-samples 200
LOAD_REPORT ?= load-report.json
# load-sustained: the booking scenario alone for 10 minutes at 4,000/s over
# 200 doctors (2.4 million bookings, 12,000 per doctor), with latency per
# 1-minute window; the aim is p99 < 20 ms overall and the last minute's p99
# within 1.5x the first's (docs/performance.md, "Sustained load"). Override
# e.g. LOAD_SUSTAINED_FLAGS='... -book-duration 60s -window 10s' for the
# 60-second version.
LOAD_SUSTAINED_FLAGS ?= -scenarios book -doctors 200 -patients 2000 -book-rate 4000 -book-duration 10m -window 1m
# The server's data dir goes under LOAD_TMPDIR. Not /tmp: on the project's
# machines creating a file under /tmp costs ~1.4 ms of CPU against ~40 us
# elsewhere on the same disk, and the server creates one mail file per
# booking, so /tmp would measure the machine's /tmp instead of Prescripto.
LOAD_TMPDIR ?= /var/tmp

# load-prod: the same generator against the production wiring (ESDB_URL on
# the esdbemu protocol emulator, MONGODB_URI on FerretDB/SQLite, REDIS_URL on
# redis-server), all on free loopback ports; see scripts/load-prod.sh.
# LOAD_PROD_CACHE=off runs without Redis (no REDIS_URL: slot reads go to
# MongoDB). Rates: what that wiring sustains on 2 cores (docs/performance.md).
LOAD_PROD_ADDR ?= 127.0.0.1:18481
LOAD_PROD_CACHE ?= on
LOAD_PROD_FLAGS ?= -scenarios book,slots,storm,lag -book-rate 100 -book-duration 10s -slots-rate 500 -slots-duration 10s -lag-samples 200

.PHONY: help build test bench load load-sustained load-prod run lint proof soak fuzz restart-bench faults proof-faults
# restart-bench: a log of RESTART_EVENTS events (built once by
# tests/load/restartbench gen under RESTART_DIR, ~10 min on 2 busy cores),
# then `prescripto serve` on it RESTART_RUNS times replaying the whole log
# (the saved read-model states deleted) and RESTART_RUNS times from the
# saved states: time to the first /readyz 200, VmRSS, a heap profile
# (docs/performance.md, "Restart").
RESTART_EVENTS ?= 1000000
RESTART_RUNS ?= 3
RESTART_DIR ?= $(LOAD_TMPDIR)/prescripto-restart-$(RESTART_EVENTS)


help:
	@echo "make build   go build ./..."
	@echo "make test    the README's test command: go test -race -count=1 -timeout 30m ./..."
	@echo "make bench   eventstore/sqlite and commands benchmarks -> bench.txt (benchstat summary if installed)"
	@echo "make load    build, serve --demo on a temp data dir at $(LOAD_ADDR), run tests/load/loadgen, stop"
	@echo "make load-sustained  make load with LOAD_SUSTAINED_FLAGS: book 4,000/s for 10 min over 200 doctors, p99 per minute"
	@echo "make load-prod  the same against esdbemu + FerretDB + redis-server at $(LOAD_PROD_ADDR) (LOAD_PROD_CACHE=off: no Redis)"
	@echo "make restart-bench  serve on a RESTART_EVENTS-event log: ready time from a full replay and from the saved read-model states"
	@echo "make proof   the doctor aggregate's state-machine model test at PROOF_SEQUENCES (10,000) sequences, the store-layer model (two handlers on one store) at a twentieth of that, then make proof-faults"
	@echo "make soak    an hour (SOAK=1h) of mixed load on the production wiring, projector and worker killed every 5 min -> soak-report.json"
	@echo "make faults  the network-fault test (production wiring behind fault proxies, 200 bookings/s, 8 s blackout)"
	@echo "make proof-faults  the same with a 30 s blackout, and PROOF_HISTORIES (1,000) linearizability histories"
	@echo "make fuzz    every go test -fuzz target for FUZZTIME ($(FUZZTIME)) each (scripts/fuzz.sh; CI runs 10s each)"
	@echo "make run     go run ./cmd/prescripto serve --demo"
	@echo "make lint    go vet and a gofmt check"

build:
	$(GO) build ./...

test:
	$(GO) test -race -count=1 -timeout 30m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) $(BENCHPKGS) | tee bench.txt
	@if [ -x "$(BENCHSTAT)" ]; then \
		echo; echo "== benchstat bench.txt"; "$(BENCHSTAT)" bench.txt; \
	else \
		echo "benchstat not found: go install golang.org/x/perf/cmd/benchstat@latest for a summary"; \
	fi

# load starts the real binary on a fresh data dir (bcrypt cost 4 and a high
# auth rate limit, so setup can register many patients), seeds the demo
# catalogue, runs the generator against it and always stops the server.
load:
	tmp=$$(mktemp -d -p $(LOAD_TMPDIR) prescripto-load.XXXXXX); \
	$(GO) build -o $$tmp/prescripto ./cmd/prescripto; \
	$(GO) build -o $$tmp/loadgen ./tests/load/loadgen; \
	PRESCRIPTO_ADDR=$(LOAD_ADDR) PRESCRIPTO_DATA=$$tmp/data AUTH_RATE_LIMIT=1000000 BOOKING_RATE_LIMIT=1000000 MAX_LIVE_BOOKINGS=0 PRESCRIPTO_BCRYPT_COST=4 LOG_LEVEL=$(LOAD_LOG_LEVEL) \
		$$tmp/prescripto serve --demo > $$tmp/server.out 2> $$tmp/server.log & \
	pid=$$!; \
	trap 'kill $$pid 2>/dev/null || true; wait $$pid 2>/dev/null || true; rm -rf $$tmp' EXIT; \
	for i in $$(seq 1 300); do [ -s $$tmp/data/demo-credentials ] && grep -q listening $$tmp/server.out && break; \
		kill -0 $$pid 2>/dev/null || { cat $$tmp/server.log; exit 1; }; sleep 0.1; done; \
	$$tmp/loadgen -base http://$(LOAD_ADDR) -data $$tmp/data -json $(LOAD_REPORT) $(LOAD_FLAGS)

load-sustained:
	$(MAKE) load LOAD_FLAGS='$(LOAD_SUSTAINED_FLAGS)'

load-prod:
	GO=$(GO) LOAD_ADDR=$(LOAD_PROD_ADDR) LOAD_TMPDIR=$(LOAD_TMPDIR) LOAD_REPORT=$(LOAD_REPORT) LOAD_LOG_LEVEL=$(LOAD_LOG_LEVEL) \
		LOAD_PROD_CACHE=$(LOAD_PROD_CACHE) bash scripts/load-prod.sh $(LOAD_PROD_FLAGS)

run:
	$(GO) run ./cmd/prescripto serve --demo

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go') $$(git ls-files --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# soak: an hour of mixed load on the production wiring (FerretDB, Redis, the
# esdb emulator) with the projector and the worker SIGKILLed in turn every
# five minutes; latency per 5-minute window, goroutines and memory over
# time, then the convergence checks (CI runs 3 minutes of it). The report
# also goes to soak-report.json.
SOAK ?= 1h
soak:
	PRESCRIPTO_SOAK=$(SOAK) PRESCRIPTO_SOAK_REPORT=$(CURDIR)/soak-report.json $(GO) test -race -count=1 -timeout 3h -run '^TestSoak$$' -v ./internal/app/

# proof: the doctor aggregate's rapid state machine (book, pay, expire,
# cancel, reschedule, complete, no-show, time off, policy changes, the
# clock, payments and refunds, fee and grid changes) against its model, at
# PROOF_SEQUENCES sequences (CI runs 1,000); then the store-layer model
# (commands/model_test.go) at a twentieth of that.
PROOF_SEQUENCES ?= 10000
proof:
	PRESCRIPTO_MODEL_SEQUENCES=$(PROOF_SEQUENCES) $(GO) test -race -count=1 -timeout 60m -run '^TestModel$$' -v ./domain/doctor/ | grep -E '^(=== RUN|--- |ok|FAIL|\s+model_test.go:[0-9]+: model:)'
	PRESCRIPTO_MODEL_SEQUENCES=$(PROOF_SEQUENCES) $(GO) test -race -count=1 -timeout 60m -run '^TestStoreModel$$' -v ./commands/ | grep -E '^(=== RUN|--- |ok|FAIL|\s+model_test.go:[0-9]+: (store model|no ))'
	$(MAKE) proof-faults

# faults: the network-fault test (internal/app/netfault_test.go) in its
# long version (the plain test run has a short one: 100/s, 2-3 s faults):
# the production wiring behind a fault proxy per server, bookings at
# FAULT_RATE/s through 500 ms latency, connection resets, a FAULT_BLACKOUT
# blackout and half-open connections (docs/reliability.md).
# The timing it asserts (every answer within the deadline, recovery within
# 5 s) is the engine's as shipped, so it runs without the race detector,
# which multiplies each request's CPU several times over on these 2 cores
# (the plain run checks the same paths under -race at 100/s);
# FAULT_RACE=-race puts it back.
FAULT_RATE ?= 200
FAULT_BLACKOUT ?= 8s
FAULT_RACE ?=
faults:
	PRESCRIPTO_FAULTS=1 PRESCRIPTO_FAULT_RATE=$(FAULT_RATE) PRESCRIPTO_FAULT_BLACKOUT=$(FAULT_BLACKOUT) \
		$(GO) test $(FAULT_RACE) -count=1 -timeout 30m -run '^TestProductionNetworkFaults$$' -v ./internal/app/

# proof-faults: the long versions: a 30 s blackout, and PROOF_HISTORIES
# porcupine-checked histories (CI checks 100).
PROOF_HISTORIES ?= 1000
proof-faults:
	$(MAKE) faults FAULT_BLACKOUT=30s
	PRESCRIPTO_LIN_HISTORIES=$(PROOF_HISTORIES) $(GO) test -race -count=1 -timeout 60m -run '^TestLinearizability$$' -v ./internal/app/

# fuzz: every native fuzz target (func FuzzXxx) for FUZZTIME each, one
# after the other (scripts/fuzz.sh; CI runs them 10s each). A crasher is
# written to the package's testdata/fuzz/FuzzXxx/: fix, then commit it.
FUZZTIME ?= 5m
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

restart-bench:
	mkdir -p $(RESTART_DIR)
	$(GO) build -o $(RESTART_DIR)/prescripto ./cmd/prescripto
	$(GO) build -o $(RESTART_DIR)/restartbench ./tests/load/restartbench
	if [ ! -f $(RESTART_DIR)/data/events.db ]; then \
		$(RESTART_DIR)/restartbench gen -data $(RESTART_DIR)/data -events $(RESTART_EVENTS) -patients 10000; \
	fi
	@echo "== warm-up start (the notifications worker mails the log's facts once)"
	$(RESTART_DIR)/restartbench measure -bin $(RESTART_DIR)/prescripto -data $(RESTART_DIR)/data -runs 1
	@echo "== before: every start replays the whole log"
	$(RESTART_DIR)/restartbench measure -bin $(RESTART_DIR)/prescripto -data $(RESTART_DIR)/data -runs $(RESTART_RUNS) -fresh -out $(RESTART_DIR)/results.jsonl
	@echo "== after: every start loads the saved states and replays the tail"
	$(RESTART_DIR)/restartbench measure -bin $(RESTART_DIR)/prescripto -data $(RESTART_DIR)/data -runs $(RESTART_RUNS) -heap $(RESTART_DIR)/heap.prof -out $(RESTART_DIR)/results.jsonl
	$(GO) tool pprof -top -sample_index=inuse_space $(RESTART_DIR)/prescripto $(RESTART_DIR)/heap.prof | head -25
	uptime
