# A semantic version, as Conduit registers plugins by version: the tag
# (v1.2.3, or v1.2.3-4-gabcdef0 after it), else v0.0.0-<commit>.
VERSION    ?= $(shell git describe --tags --dirty --match 'v*' 2>/dev/null || echo v0.0.0-$$(git describe --always --dirty 2>/dev/null || echo devel))
MODULE     := github.com/conduitio-labs/conduit-connector-danube
GOTOOL     := go tool -modfile=tools/go.mod
BINARY     := conduit-connector-danube
# Conduit v0.14.0, built from the pinned module in test/conduit.
CONDUIT    := bin/conduit
GOTEST_FLAGS ?=
BENCH_FLAGS  ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the connector binary (version stamped from git)
	go build -ldflags "-X '$(MODULE).version=$(VERSION)'" -o $(BINARY) ./cmd/connector

# Packages that need no Conduit build: everything outside test/.
UNIT_PKGS = $(shell go list ./... | grep -v '/test/')

.PHONY: test-unit
test-unit: ## Run the fast tests (seconds; no Conduit build): client, test broker, conformance, source, destination, acceptance (-race)
	go test $(GOTEST_FLAGS) -race $(UNIT_PKGS)

.PHONY: test
test: $(CONDUIT) ## Run every test: test-unit plus end-to-end, fault and harness tests through a real Conduit (-race)
	CONDUIT_BIN=$(CURDIR)/$(CONDUIT) go test $(GOTEST_FLAGS) -race ./...

.PHONY: test-e2e
test-e2e: $(CONDUIT) ## Run only the end-to-end tests (real Conduit + test broker binary)
	CONDUIT_BIN=$(CURDIR)/$(CONDUIT) go test $(GOTEST_FLAGS) -count=1 -v ./test/e2e/...

.PHONY: bench
bench: $(CONDUIT) ## Measure whole pipelines through Conduit (docs/benchmarks.md); quick look: BENCH_FLAGS="-records 20000 -runs 1 -rss-backlog 0"; a running broker: BROKER_URL=http://127.0.0.1:6650 ADMIN_URL=http://127.0.0.1:50051
	CONDUIT_BIN=$(CURDIR)/$(CONDUIT) go run ./test/bench $(if $(BROKER_URL),-broker-url $(BROKER_URL)) $(if $(ADMIN_URL),-admin-url $(ADMIN_URL)) $(BENCH_FLAGS)

.PHONY: bench-smoke
bench-smoke: $(CONDUIT) ## One short round of every make bench scenario, to keep the harness working (CI)
	CONDUIT_BIN=$(CURDIR)/$(CONDUIT) go run ./test/bench -records 2000 -runs 1 -rss-backlog 0 -trial 500ms

.PHONY: bench-go
bench-go: ## Run the Go benchmarks of the client, destination and source (regression guards)
	go test -run '^$$' -bench . -benchmem ./...

.PHONY: conduit
conduit: $(CONDUIT) ## Build Conduit v0.14.0 into bin/conduit (about 3 minutes on a cold cache)

# test/conduit declares Conduit as a Go tool, so `go tool -n` builds it once
# into the Go build cache and prints its path; later builds (and fresh clones
# on the same machine) copy it from there. go.sum is committed, so no
# checksum-database flags are needed.
$(CONDUIT): test/conduit/go.mod test/conduit/go.sum
	@mkdir -p $(dir $(CONDUIT))
	cp "$$(cd test/conduit && go tool -n conduit)" $(CONDUIT)

.PHONY: generate
generate: ## Regenerate connector.yaml from the config structs and the README's generated sections
	go generate ./...
	$(GOTOOL) conn-sdk-cli readmegen -w

.PHONY: check-generated
check-generated: generate ## Fail when connector.yaml or the README's generated sections are stale
	@git diff --exit-code -- connector.yaml README.md || { echo "generated files are stale: run 'make generate' and commit the result" >&2; exit 1; }

.PHONY: ci
ci: ## What CI runs (.ci/run and GitHub Actions): lint, generated files, every test, a bench smoke round
	$(MAKE) lint
	$(MAKE) check-generated
	$(MAKE) test
	$(MAKE) bench-smoke

.PHONY: lint
lint: ## Run golangci-lint
	$(GOTOOL) golangci-lint run ./...

.PHONY: fmt
fmt: ## Format the code with gofumpt
	$(GOTOOL) gofumpt -l -w .

.PHONY: install-tools
install-tools: ## Download and build the pinned tools (tools/go.mod) into $GOBIN
	go mod download -modfile=tools/go.mod
	go list -modfile=tools/go.mod tool | xargs go install -modfile=tools/go.mod

.PHONY: install
install: build ## Copy the connector into a Conduit connectors directory: make install CONNECTORS_DIR=/path/to/conduit/connectors
	@test -n "$(CONNECTORS_DIR)" || { echo "set CONNECTORS_DIR to the connectors directory of your Conduit (its --connectors.path)"; exit 1; }
	mkdir -p "$(CONNECTORS_DIR)"
	install -m 0755 $(BINARY) "$(CONNECTORS_DIR)/$(BINARY)"

.PHONY: demo
demo: $(CONDUIT) ## Run Conduit with the connector against a local test broker and show records flowing
	go run ./test/demo

.PHONY: proto
proto: ## Regenerate the Go code for the Danube protocol (needs protoc: apt-get install protobuf-compiler)
	$(GOTOOL) -n protoc-gen-go >/dev/null
	protoc --proto_path=proto \
		--plugin=protoc-gen-go="$$($(GOTOOL) -n protoc-gen-go)" \
		--plugin=protoc-gen-go-grpc="$$($(GOTOOL) -n protoc-gen-go-grpc)" \
		--go_out=. --go_opt=module=$(MODULE) \
		--go-grpc_out=. --go-grpc_opt=module=$(MODULE) \
		proto/*.proto
