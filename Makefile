# fleetwatt — build, test, lint, benchmark and demo.
#
#   make demo    build everything, start InfluxDB, the collector and an agent for this host,
#                and show what arrives (the README's run command)
#   make test    every test, against a real InfluxDB (the README's test command; .ci/run)

SHELL        := /bin/bash
MODULE       := github.com/fleetwatt/fleetwatt
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
TOOLS        := $(CURDIR)/.tools
BIN          := $(CURDIR)/bin
INFLUXD      := $(TOOLS)/bin/influxd
GOLANGCI     := $(TOOLS)/bin/golangci-lint
INFLUXDB_VERSION  := v1.8.10
GOLANGCI_VERSION  := v2.15.0
LDFLAGS      := -s -w -X main.version=$(VERSION)
# grpcnotrace leaves out gRPC's /debug/requests tracing (golang.org/x/net/trace), which neither
# binary serves: 3 MB less binary and resident memory (docs/performance.md).
BUILDTAGS    := grpcnotrace
PLATFORMS    := linux/amd64 linux/arm64
BINARIES     := fleetwatt-agent:./agent fleetwatt-collector:./collector

export CGO_ENABLED := 0

.PHONY: all build packages deps test test-gpu test-short bench fuzz lint tools demo clean help dashboards

all: build

help: ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## both binaries for linux/amd64 and linux/arm64 into bin/, CGO off, version stamped
	@for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  for b in $(BINARIES); do \
	    name=$${b%%:*}; pkg=$${b#*:}; \
	    echo "build $$name $$os/$$arch"; \
	    GOOS=$$os GOARCH=$$arch go build -trimpath -tags '$(BUILDTAGS)' -ldflags '$(LDFLAGS)' -o $(BIN)/$$os-$$arch/$$name $$pkg || exit 1; \
	  done; \
	done

packages: build ## .deb and .rpm of both binaries for amd64 and arm64 into dist/ (deploy/packaging)
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0) \
	  go run ./deploy/packaging --version $(VERSION) --bin $(BIN) --out $(CURDIR)/dist

tools: $(INFLUXD) ## install the tools the tests and the demo need (influxd, golangci-lint)
tools: $(GOLANGCI)

$(INFLUXD):
	@echo "installing influxd $(INFLUXDB_VERSION) into $(TOOLS)/bin (built from its Go module; a minute or two, once)"
	GOBIN=$(TOOLS)/bin go install github.com/influxdata/influxdb/cmd/influxd@$(INFLUXDB_VERSION)

$(GOLANGCI):
	@echo "installing golangci-lint $(GOLANGCI_VERSION) into $(TOOLS)/bin (a few minutes, once)"
	GOBIN=$(TOOLS)/bin go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

deps: ## system packages the tests need (qemu-user-static for the arm64 agent), via apt, once
	@./scripts/deps.sh

test: deps $(INFLUXD) ## every test, with -race, against a real InfluxDB and the arm64 agent under qemu
	CGO_ENABLED=1 FLEETWATT_INFLUXD=$(INFLUXD) go test -race -count=1 -timeout 15m ./...
	@# The NVML binding (opt-in build tag) against a library with NVML's C ABI, built with gcc.
	CGO_ENABLED=1 go test -race -count=1 -tags nvml_dlopen ./agent/internal/sensor/nvml/

test-gpu: ## on a machine with an NVIDIA GPU: the NVML binding against the real driver
	go test -count=1 -v -tags nvml_dlopen,nvml_hardware -run TestLibrary ./agent/internal/sensor/nvml/

test-short: deps $(INFLUXD) ## every test without the race detector (faster)
	FLEETWATT_INFLUXD=$(INFLUXD) go test -count=1 ./...

bench: $(INFLUXD) ## every benchmark, then one table: figures, targets, change against bench/baseline.json
	@# The agent's footprint runs the released binary for FLEETWATT_BENCH_AGENT_TIME per interval
	@# (default here 60s; 20s for a quick look). BENCHFLAGS go to the table: -only REGEXP,
	@# -count N, -record, -strict (docs/performance.md).
	FLEETWATT_INFLUXD=$(INFLUXD) FLEETWATT_BENCH_AGENT_TIME=$${FLEETWATT_BENCH_AGENT_TIME:-60s} \
	  go run ./internal/benchtable $(BENCHFLAGS)

FUZZTIME ?= 10s
fuzz: ## run every fuzz target for FUZZTIME (default 10s) each
	@for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; \
	done

dashboards: ## regenerate the Grafana dashboards (dashboards/grafana/*.json) from their Go definitions
	go run ./dashboards/grafana/gen

lint: $(GOLANGCI) ## golangci-lint (errorlint, sloglint, gosec, revive, staticcheck, gofumpt)
	$(GOLANGCI) run ./...

demo: deps build $(INFLUXD) ## build, start InfluxDB, the collector and an agent for this host, show the data
	./scripts/demo.sh

clean: ## remove build outputs and demo data (keeps .tools)
	rm -rf $(BIN) .run
