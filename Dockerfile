# Image of both Mooring controllers. Built by CI elsewhere; this machine has no Docker engine.
# Stage 1: kustomize at the pinned version, from its upstream Go module.
FROM golang:1.26-bookworm AS kustomize
ARG KUSTOMIZE_VERSION=v5.8.2
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags="-s -w" \
      sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}

# Stage 2: the controllers.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates ./crates
RUN cargo build --release --locked \
      -p mooring-source-controller -p mooring-kustomize-controller \
 && install -m 0755 target/release/mooring-source-controller target/release/mooring-kustomize-controller /out/ 2>/dev/null \
 || (mkdir -p /out && install -m 0755 target/release/mooring-source-controller target/release/mooring-kustomize-controller /out/)

# Stage 3: runtime. The OpenSSH client is what gix runs for ssh:// repositories.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates openssh-client \
 && rm -rf /var/lib/apt/lists/*
COPY --from=kustomize /out/kustomize /usr/local/bin/kustomize
COPY --from=build /out/mooring-source-controller /out/mooring-kustomize-controller /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mooring-source-controller"]
