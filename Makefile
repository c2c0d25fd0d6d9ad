# hacluster: `kubectl hacluster` and `docker k8sprep` from one Go module.
# Run `make help` for the targets.

SHELL        := /bin/bash
MODULE       := github.com/hacluster/hacluster
VERSION      ?= $(shell git describe --tags --always --dirty --match 'v*' 2>/dev/null | sed 's/^\([^v]\)/v0.0.0-\1/' || echo v0.0.0-dev)
COMMIT       ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Commit time, not wall time, so that builds are reproducible.
DATE         ?= $(shell git log -1 --format=%cI 2>/dev/null || echo unknown)
LDFLAGS      := -s -w -X $(MODULE)/pkg/version.Version=$(VERSION) -X $(MODULE)/pkg/version.Commit=$(COMMIT) -X $(MODULE)/pkg/version.Date=$(DATE)
GOFLAGS_BUILD:= -trimpath -ldflags '$(LDFLAGS)'
BINDIR       ?= $(HOME)/.local/bin
DOCKER_PLUGIN_DIR ?= $(or $(DOCKER_CONFIG),$(HOME)/.docker)/cli-plugins
K8S_VERSION  ?= v1.37.2
export K8S_VERSION
CACHE        := $(CURDIR)/.cache
TOOLS        := $(CACHE)/tools
STATICCHECK  := $(TOOLS)/staticcheck
KREW_VERSION := v0.5.0
KREW         := $(TOOLS)/krew-$(KREW_VERSION)
TEST_TIMEOUT ?= 75m

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_-]+:.*## /{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build both plugins into bin/
	go build $(GOFLAGS_BUILD) -o bin/ ./cmd/kubectl-hacluster ./cmd/docker-k8sprep
	@printf '#!/usr/bin/env sh\n# kubectl >= 1.26 calls this for `kubectl hacluster <TAB>`\nexec kubectl hacluster __complete "$$@"\n' > bin/kubectl_complete-hacluster
	@chmod +x bin/kubectl_complete-hacluster

.PHONY: install
install: build ## Install kubectl-hacluster into BINDIR (~/.local/bin) and docker-k8sprep into ~/.docker/cli-plugins
	install -d $(BINDIR) $(DOCKER_PLUGIN_DIR)
	install -m 0755 bin/kubectl-hacluster bin/kubectl_complete-hacluster $(BINDIR)/
	install -m 0755 bin/docker-k8sprep $(DOCKER_PLUGIN_DIR)/docker-k8sprep
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; *) echo "note: add $(BINDIR) to your PATH so kubectl finds the plugin";; esac

.PHONY: k8s-tools
k8s-tools: ## Build (once, cached per K8S_VERSION) etcd, kube-apiserver, controller-manager, scheduler, kubectl, kubeadm and kwok
	hack/k8s-tools/build.sh

.PHONY: images
images: ## Build (once, cached with docker save) the local Debian, MariaDB and Go builder images
	hack/images/build.sh

.PHONY: upstream
upstream: k8s-tools images ## Build (once, cached) what the node bed's upstream in a box serves: release binaries and images
	hack/upstream/build.sh

.PHONY: nodebed-up
nodebed-up: images upstream ## Start NODES (default 4) bare Debian hosts over SSH plus the upstream in a box; prints how to reach them
	go run ./hack/nodebed up -n $(or $(NODES),4)

.PHONY: nodebed-down
nodebed-down: ## Remove every host nodebed-up started and restore this machine's sysctls
	go run ./hack/nodebed down

.PHONY: testbed-up
testbed-up: k8s-tools build ## Start a local HA-shaped cluster (real control plane, simulated kwok nodes)
	go run ./hack/testbed up

.PHONY: testbed-down
testbed-down: ## Stop every process testbed-up started
	go run ./hack/testbed down

.PHONY: tools
tools: $(STATICCHECK) $(KREW) ## Install the pinned linters and krew into .cache/tools

$(STATICCHECK):
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@v0.8.2

# The krew e2e test (krew/) installs the same pinned krew here by itself.
$(KREW):
	@tmp=$$(mktemp -d) && GOBIN=$$tmp go install sigs.k8s.io/krew/cmd/krew@$(KREW_VERSION) && mkdir -p $(TOOLS) && mv $$tmp/krew $@ && rmdir $$tmp

.PHONY: lint
lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(STATICCHECK) ./...

.PHONY: test
test: build k8s-tools images upstream ## Run every test: unit, real kube-apiserver, real Docker engine, node bed over SSH, krew and docker CLI e2e
	HACLUSTER_BIN=$(CURDIR)/bin go test -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: bench
bench: build k8s-tools images upstream ## Go benchmarks plus the comparison scripts in hack/bench
	go test -run '^$$' -bench . -benchtime 5x -timeout 45m ./...
	@for s in hack/bench/*.sh; do [ -e "$$s" ] || continue; echo "== $$s"; bash "$$s" || exit 1; done

.PHONY: dist
dist: ## Reproducible release archives for linux/darwin amd64+arm64 and windows amd64, with sha256 sums (PLATFORMS=os/arch... for fewer)
	VERSION=$(VERSION) LDFLAGS='$(LDFLAGS)' hack/dist.sh

.PHONY: krew-manifest
krew-manifest: ## Render .krew.yaml against dist/ into plugins/hacluster.yaml
	VERSION=$(VERSION) go run ./hack/krewmanifest -template .krew.yaml -dist dist -out plugins/hacluster.yaml

.PHONY: demo
demo: ## Build, install, bootstrap an HA cluster on 4 bare hosts (containers) over SSH, inspect it, run a workload
	hack/demo.sh

.PHONY: clean
clean: ## Remove build outputs (keeps the cached Kubernetes binaries and images)
	rm -rf bin dist
