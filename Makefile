# The commands people repeat. Each is a thin wrapper: the scripts it calls
# say what they need and work without make.
VERSION := $(shell deploy/version)
IMAGE ?= ghcr.io/flowgate/flowgate
PLATFORMS ?= linux/amd64,linux/arm64

.PHONY: build cross test fuzz bench deb lint-deb image image-docker image-multiarch vm vm-test clean

# The binary for this machine, in ./flowgate.
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o flowgate ./cmd/flowgate

# Static binaries for every architecture we ship, in dist/linux-ARCH/.
cross:
	for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" \
			-o dist/linux-$$arch/flowgate ./cmd/flowgate || exit 1; \
	done

# Everything CI runs: vet, tests, brief fuzzing.
test:
	scripts/test

# Every fuzz target for FUZZTIME (default 10s) each, without the tests.
fuzz:
	scripts/fuzz

# The benchmark against goflow2 and nfacctd (benchmarks/README.md): about
# 25 minutes; BENCHFLAGS=-quick for a short run.
bench:
	go -C benchmarks run ./cmd/bench $(BENCHFLAGS)

# Debian packages for amd64 and arm64 in dist/.
deb:
	deploy/debian/build

# This machine's Debian package, checked: no lintian error, every Go module
# of the binary named in its copyright file.
lint-deb:
	deploy/debian/lint

# The container image for this machine's platform (ARCH=arm64 for the
# other), without a Docker daemon and offline: an OCI layout in
# dist/image/oci and dist/image/flowgate-VERSION-linux-ARCH.tar for
# `docker load -i`, tagged $(IMAGE):$(VERSION) and :latest.
image:
	IMAGE=$(IMAGE) scripts/image

# The same image built by a Docker daemon from the Dockerfile (pulls golang
# and distroless).
image-docker:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(subst ~,-,$(VERSION)) -t $(IMAGE):latest .

# Both platforms, pushed (docker buildx; IMAGE must be a registry path).
image-multiarch:
	docker buildx build --platform $(PLATFORMS) --build-arg VERSION=$(VERSION) \
		-t $(IMAGE):$(subst ~,-,$(VERSION)) -t $(IMAGE):latest --push .

# The VM image in dist/ (root: debootstrap), then its smoke test under qemu.
vm:
	deploy/vm/build

vm-test:
	deploy/vm/smoke-test

clean:
	rm -rf dist flowgate
