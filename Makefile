VERSION    ?= $(shell git describe --tags --dirty --always 2>/dev/null || echo devel)
MODULE     := github.com/conduitio-labs/conduit-connector-danube
GOTOOL     := go tool -modfile=tools/go.mod

.PHONY: proto
proto: ## Regenerate the Go code for the Danube protocol (needs protoc: apt-get install protobuf-compiler)
	$(GOTOOL) -n protoc-gen-go >/dev/null
	protoc --proto_path=proto \
		--plugin=protoc-gen-go="$$($(GOTOOL) -n protoc-gen-go)" \
		--plugin=protoc-gen-go-grpc="$$($(GOTOOL) -n protoc-gen-go-grpc)" \
		--go_out=. --go_opt=module=$(MODULE) \
		--go-grpc_out=. --go-grpc_opt=module=$(MODULE) \
		proto/*.proto
