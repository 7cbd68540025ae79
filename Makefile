# Build, test and package cyberdb.
#
#   make              build dist/bin/cyberdbd and dist/bin/cyberdb (the CLI)
#   make docs         dist/doc: their manual pages and the Debian changelog
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
DOC        := $(DIST)/doc
MAINTAINER ?= The cyberdb authors <maintainers@cyberdb.invalid>

# Where binaries that run on this machine are: $(BIN), unless the packages
# are for another architecture. HOSTBUILD builds for this machine whatever
# GOARCH says (make exports a GOARCH given on its command line).
GOHOST    := GOOS=$(shell go env GOHOSTOS) GOARCH=$(shell go env GOHOSTARCH)
HOSTBUILD := $(GOHOST) go build
ifeq ($(GOHOST),GOOS=linux GOARCH=$(GOARCH))
HOSTBIN := $(BIN)
else
HOSTBIN := $(DIST)/hostbin
endif

# nfpm builds the packages, run at a pinned version through "go run": no
# install, and nothing added to go.mod. v2.43.4 is the last release whose
# dependencies all come from the Go module proxy: later ones need
# go.digitalxero.dev modules, which the proxy refuses here.
NFPM_VERSION := v2.43.4
NFPM         := $(GOHOST) go run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)

# Static, reproducible binaries that print VERSION with --version.
GOBUILD := CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=$(VERSION)"
# Package files get the last commit's time, for reproducible packages.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)

.PHONY: all build docs test deb rpm packages version clean bench-redis

all: build

build:
	@mkdir -p $(BIN)
	$(GOBUILD) -o $(BIN)/cyberdbd ./cyberdbd
	$(GOBUILD) -o $(BIN)/cyberdb ./libcyberdb/cmd/cyberdb

# The manual pages and the Debian changelog, made by packaging/gendoc from
# the binaries just built: a page is its program's own --help, so the two
# cannot drift. The programs must run here to print their help: for
# another GOARCH they are built once more for this machine.
docs: build
	@mkdir -p $(DOC) $(DIST)/tools
	$(HOSTBUILD) -o $(DIST)/tools/gendoc ./packaging/gendoc
	@if [ '$(HOSTBIN)' != '$(BIN)' ]; then \
		echo '$(HOSTBUILD) -o $(HOSTBIN)/ ./cyberdbd ./libcyberdb/cmd/cyberdb'; \
		mkdir -p $(HOSTBIN) && $(HOSTBUILD) -o $(HOSTBIN)/ ./cyberdbd ./libcyberdb/cmd/cyberdb; \
	fi
	$(DIST)/tools/gendoc man -section 8 -version '$(VERSION)' -commands gen-cert \
		-see-also 'cyberdb(1),systemctl(1),journalctl(1)' -o $(DOC)/cyberdbd.8.gz $(HOSTBIN)/cyberdbd
	$(DIST)/tools/gendoc man -section 1 -version '$(VERSION)' -commands auto \
		-see-also 'cyberdbd(8)' -o $(DOC)/cyberdb.1.gz $(HOSTBIN)/cyberdb
	$(DIST)/tools/gendoc changelog -package cyberdbd -version '$(VERSION)' -maintainer '$(MAINTAINER)' \
		-commit '$(COMMIT)' -o $(DOC)/changelog.gz

test:
	bash .ci/run

# A .deb's control file has no License field (lintian: unknown-field): its
# license is /usr/share/doc/cyberdbd/copyright. nfpm writes the field when
# the config has one, and rpm needs it, so the .deb gets the config less it.
deb: docs
	sed '/^license:/d' packaging/nfpm.yaml > $(DIST)/nfpm-deb.yaml
	VERSION='$(VERSION)' ARCH='$(GOARCH)' BIN='$(BIN)' DOC='$(DOC)' MAINTAINER='$(MAINTAINER)' \
		$(NFPM) package --config $(DIST)/nfpm-deb.yaml --packager deb --target $(DIST)/
	@ls -1 $(DIST)/cyberdbd_$(VERSION)_*.deb

rpm: docs
	VERSION='$(VERSION)' ARCH='$(GOARCH)' BIN='$(BIN)' DOC='$(DOC)' MAINTAINER='$(MAINTAINER)' \
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
