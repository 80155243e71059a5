# The image docs/kubernetes.md deploys. Build with: docker build -t grpclb:0.1.0 .
# Stage 1 compiles a stripped release binary; stage 2 holds only that binary
# (linked to glibc alone), CA certificates for TLS to etcd and the Kubernetes
# API, and runs as an unprivileged user.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# PROTOC comes from the vendored protoc (.cargo/config.toml): nothing to install.
RUN cargo build --release --locked \
 && strip target/release/grpclb \
 && cp target/release/grpclb /grpclb

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 65532 --no-create-home --shell /usr/sbin/nologin grpclb
COPY --from=build /grpclb /usr/local/bin/grpclb
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/grpclb"]
