# Two commands for a fresh machine (Debian, as root or with sudo):
#   make demo   build kiln and release the example image to three local regions
#   make test   run the whole test suite
# `make deps` installs the Debian packages both need.

GO       ?= go
KILN     := bin/kiln
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO     ?= demo
# Fuzz budgets are execution counts, not durations: a duration-based
# -fuzztime races Go's fuzz coordinator on a loaded machine and fails with
# "context deadline exceeded" and no crasher (go.dev/issue/75804). About 15 s
# each on an idle 2-CPU machine. Minimizing a new input pauses the count;
# FUZZ_MINIMIZE bounds each pause.
FUZZ_CONFIG ?= 200000x
FUZZ_MANIFEST ?= 400000x
FUZZ_RECORD ?= 200000x
FUZZ_CONSOLE ?= 100000x
FUZZ_VARFILE ?= 100000x
FUZZ_INSIDE ?= 50000x
FUZZ_FORMAT ?= 200000x
FUZZ_REMOTE ?= 100000x
FUZZ_DIST ?= 100000x
FUZZ_MINIMIZE ?= 10s

# The Debian packages the local backend and the tests use (rsync:
# gitlab-ci-local copies each job's checkout with it).
DEB_PACKAGES := mmdebstrap qemu-utils qemu-system-x86 ovmf mtools dosfstools fdisk \
	systemd-boot-efi e2fsprogs xfsprogs ansible uidmap git ca-certificates rsync \
	minisign lxd-client curl chromium

PREFIX   ?= /usr/local
DIST_PLATFORMS := linux/amd64 linux/arm64

# gitlab-ci-local runs the pipeline `kiln ci gitlab` writes in the tests.
# Pinned with its dependencies in .ci/npm/package-lock.json and installed
# into .tools/ with npm ci, not globally; 4.74 and later need Node.js 22,
# these machines have 20.
GITLAB_CI_LOCAL_VERSION := 4.73.0
TOOLS := $(CURDIR)/.tools
GITLAB_CI_LOCAL := $(TOOLS)/npm/node_modules/.bin/gitlab-ci-local
GITLAB_CI_LOCAL_STAMP := $(TOOLS)/npm/.installed

.PHONY: all build install dist generate deps ci-tools demo test check fuzz bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(KILN) ./cmd/kiln

install: build
	install -D -m 0755 $(KILN) $(DESTDIR)$(PREFIX)/bin/kiln

# The release binaries: dist/kiln-VERSION-OS-ARCH.tar.gz and SHA256SUMS,
# static (no cgo), for a release's page.
dist:
	rm -rf dist && mkdir -p dist
	@for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; name=kiln-$(VERSION)-$$os-$$arch; \
		echo "building $$name"; \
		mkdir -p dist/$$name && \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o dist/$$name/kiln ./cmd/kiln && \
		cp README.md dist/$$name/ && \
		tar -C dist -czf dist/$$name.tar.gz $$name && rm -rf dist/$$name || exit 1; \
	done
	cd dist && sha256sum *.tar.gz > SHA256SUMS

# The JSON Schemas in docs/schemas, from the report and config types.
generate:
	$(GO) generate ./internal/report

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

ci-tools: $(GITLAB_CI_LOCAL_STAMP)

$(GITLAB_CI_LOCAL_STAMP): .ci/npm/package.json .ci/npm/package-lock.json
	@command -v npm >/dev/null || { echo "ci-tools needs npm (Node.js 18 or 20)"; exit 1; }
	rm -rf $(TOOLS)/npm && mkdir -p $(TOOLS)/npm
	cp .ci/npm/package.json .ci/npm/package-lock.json $(TOOLS)/npm/
	cd $(TOOLS)/npm && npm ci --no-audit --no-fund
	$(GITLAB_CI_LOCAL) --version | grep -qx '$(GITLAB_CI_LOCAL_VERSION)'
	touch $@

# The main job on the local backend: init the example project, release it to
# local-a, local-b and local-c, show the manifest.
demo: deps build
	@if [ ! -f $(DEMO)/kiln.yaml ]; then $(KILN) init $(DEMO); fi
	$(KILN) validate -c $(DEMO)/kiln.yaml
	$(KILN) release -c $(DEMO)/kiln.yaml debian-sandbox
	$(KILN) manifest show -c $(DEMO)/kiln.yaml --channel latest

# The whole suite: formatting, vet, unit and integration tests (real
# mmdebstrap builds, qemu boots and moto), and each fuzzer for its
# execution budget.
test: deps check ci-tools
	KILN_GITLAB_CI_LOCAL=$(GITLAB_CI_LOCAL) $(GO) test -count=1 -timeout 60m ./...
	$(MAKE) fuzz

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:" $$unformatted; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum need go mod tidy"; exit 1; }

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZ_CONFIG) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/config
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZ_MANIFEST) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/manifest
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZ_RECORD) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/deploy/record
	$(GO) test -run='^$$' -fuzz='^FuzzCleanConsole$$' -fuzztime=$(FUZZ_CONSOLE) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/console
	$(GO) test -run='^$$' -fuzz='^FuzzVarFile$$' -fuzztime=$(FUZZ_VARFILE) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/config
	$(GO) test -run='^$$' -fuzz='^FuzzResolveInside$$' -fuzztime=$(FUZZ_INSIDE) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/config
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeFormat$$' -fuzztime=$(FUZZ_FORMAT) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/manifest
	$(GO) test -run='^$$' -fuzz='^FuzzParseRemote$$' -fuzztime=$(FUZZ_REMOTE) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/forge
	for f in FuzzDecodeStreams FuzzParseSums FuzzParseChangelog; do \
		$(GO) test -run='^$$' -fuzz="^$$f\$$" -fuzztime=$(FUZZ_DIST) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/distribute || exit 1; done
	$(GO) test -run='^$$' -fuzz='^FuzzParseSignature$$' -fuzztime=$(FUZZ_DIST) -fuzzminimizetime=$(FUZZ_MINIMIZE) ./internal/minisign

# Benchmarks that anyone can rerun; results go to docs/bench/ and are
# summarised in docs/BENCHMARKS.md. bench-aws.sh needs Packer and moto_server.
bench: build
	./scripts/bench-local.sh
	./scripts/bench-scale.sh
	./scripts/bench-aws.sh
	./scripts/bench-destroy.sh
	./scripts/bench-console.sh
	./scripts/bench-serve.sh

clean:
	rm -rf bin dist .tools
