# Build, test and package cyberdb.
#
#   make              build dist/bin/cyberdbd (and dist/bin/cyberdb, the CLI)
#   make test         what CI runs: bash .ci/run
#   make deb          dist/cyberdbd_<version>_<arch>.deb
#   make rpm          dist/cyberdbd-<version>-1.<arch>.rpm
#   make version      print the version the binaries and packages get
#   make bench-redis  cyberdb and Redis side by side on this machine (bench/bench-redis.sh;
#                     not part of CI: slow, and only meaningful on a quiet machine)
#
# Variables: VERSION (default: from git tags, packaging/version.sh), GOARCH
# (default: this machine's), DIST (default: dist), MAINTAINER.

VERSION    ?= $(shell packaging/version.sh)
GOARCH     ?= $(shell go env GOARCH)
DIST       ?= dist
BIN        := $(DIST)/bin
MAINTAINER ?= The cyberdb authors <maintainers@cyberdb.invalid>

# nfpm builds the packages, run at a pinned version through "go run": no
# install, and nothing added to go.mod. v2.43.4 is the last release whose
# dependencies all come from the Go module proxy: later ones need
# go.digitalxero.dev modules, which the proxy refuses here.
NFPM_VERSION := v2.43.4
NFPM         := go run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# Static, reproducible binaries that print VERSION with --version.
GOBUILD := CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=$(VERSION)"
# Package files get the last commit's time, for reproducible packages.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

.PHONY: all build test deb rpm packages version clean bench-redis

all: build

build:
	@mkdir -p $(BIN)
	$(GOBUILD) -o $(BIN)/cyberdbd ./cyberdbd
	@# The CLI is written separately; package it as soon as it exists.
	@if [ -d libcyberdb/cmd/cyberdb ]; then \
		echo '$(GOBUILD) -o $(BIN)/cyberdb ./libcyberdb/cmd/cyberdb'; \
		$(GOBUILD) -o $(BIN)/cyberdb ./libcyberdb/cmd/cyberdb; \
	else \
		rm -f $(BIN)/cyberdb; \
		echo "note: ./libcyberdb/cmd/cyberdb does not exist yet: the packages hold only cyberdbd" >&2; \
	fi

test:
	bash .ci/run

deb: build
	VERSION='$(VERSION)' GOARCH='$(GOARCH)' BIN='$(BIN)' MAINTAINER='$(MAINTAINER)' \
		$(NFPM) package --config packaging/nfpm.yaml --packager deb --target $(DIST)/
	@ls -1 $(DIST)/cyberdbd_$(VERSION)_*.deb

rpm: build
	VERSION='$(VERSION)' GOARCH='$(GOARCH)' BIN='$(BIN)' MAINTAINER='$(MAINTAINER)' \
		$(NFPM) package --config packaging/nfpm.yaml --packager rpm --target $(DIST)/
	@ls -1 $(DIST)/cyberdbd-$(VERSION)-*.rpm

packages: deb rpm

version:
	@echo $(VERSION)

# RUNS, N, KEYS, LOAD and CASES are passed on: see bench/bench-redis.sh.
bench-redis:
	bash bench/bench-redis.sh

clean:
	rm -rf $(DIST)
