# shopfn — developer tasks. `make help` lists them.

# Pinned tool versions: CI installs exactly these (`make tools`).
BUF_VERSION                ?= v1.75.0
PROTOC_GEN_GO_VERSION      ?= v1.36.12
PROTOC_GEN_GO_GRPC_VERSION ?= v1.6.0
PROTOC_GEN_VALIDATE_VERSION ?= v1.3.3
GRPC_GATEWAY_VERSION       ?= v2.33.0
STATICCHECK_VERSION        ?= v0.8.2

GOBIN ?= $(shell go env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)

# Go packages we wrote (generated code is checked by regenerating it).
OWN_PKGS = $(shell go list ./... | grep -v '/proto/')

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the tasks.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: tools
tools: ## Install the pinned code generators and linters with go install.
	go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	go install github.com/envoyproxy/protoc-gen-validate@$(PROTOC_GEN_VALIDATE_VERSION)
	go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
	go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

.PHONY: generate
generate: ## Regenerate the protos' Go code, gateway and OpenAPI document (buf, local plugins).
	go run ./tools/protoprint -out proto
	buf generate

# Everything generate writes: the proto tree (Go code, gateway, the printed
# google/api protos) and the gateway's OpenAPI document.
GENERATED = proto functions/gateway/openapi

.PHONY: check-generated
check-generated: generate ## Fail if the committed generated code is stale.
	@git diff --exit-code --stat -- $(GENERATED) || \
		(echo "generated code is out of date: run 'make generate' and commit" && exit 1)
	@test -z "$$(git status --porcelain -- $(GENERATED))" || \
		(git status --porcelain -- $(GENERATED); echo "generate made new files: commit them" && exit 1)

.PHONY: lint
lint: ## gofmt, go vet, staticcheck and buf lint.
	@test -z "$$(gofmt -l .)" || (gofmt -l . && echo "gofmt: files above need formatting" && exit 1)
	go vet ./...
	staticcheck $(OWN_PKGS)
	buf lint
	terraform fmt -check -recursive infra

.PHONY: breaking
breaking: ## Check the protos for breaking changes against main.
	buf breaking --against '.git#branch=main'

.PHONY: test
test: ## Run every test (emulator tests skip without gcloud).
	go test ./...

.PHONY: test-ci
test-ci: ## What CI runs: race detector, emulators required.
	SHOPFN_REQUIRE_EMULATORS=1 go test -race -count=1 ./...

FUZZTIME ?= 60s
.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 60s).
	go test -run '^$$' -fuzz FuzzVerify -fuzztime $(FUZZTIME) ./shared/auth
	go test -run '^$$' -fuzz FuzzDecodeValidate -fuzztime $(FUZZTIME) ./shared/serve

BENCH_TARGET ?= user
.PHONY: bench
bench: ## Cold start, idle RSS and throughput of BENCH_TARGET vs a bare grpc-go server.
	go run ./bench/cmd/coldstart -target $(BENCH_TARGET) -ref bare -n 30
	go run ./bench/cmd/throughput -target $(BENCH_TARGET) -ref bare -c 64 -d 5s -rounds 5

.PHONY: dev
dev: ## Run the whole system on this machine.
	go run ./cmd/shopfn dev

KO_VERSION ?= v0.19.1
KOCACHE    ?= $(CURDIR)/bin/ko-cache
# Every deployable's main package, and the shopfn command (it runs the schedules).
IMAGE_PKGS  = $(shell go list ./functions/*/cmd) ./cmd/shopfn

.PHONY: images
images: ## Build the images with ko, offline, into the OCI layout bin/images (refs in bin/images/refs.txt).
	go install github.com/google/ko@$(KO_VERSION)
	base=$$(KOCACHE=$(KOCACHE) go run ./infra/kobase) && \
	KOCACHE=$(KOCACHE) KO_DEFAULTBASEIMAGE=$$base KO_DOCKER_REPO=$${KO_DOCKER_REPO:-ko.invalid/shopfn} \
		$(GOBIN)/ko build --push=false --oci-layout-path bin/images --image-refs bin/images/refs.txt \
		--preserve-import-paths $(IMAGE_PKGS)
