# The image docs/kubernetes.md deploys: build the binary first
# (cargo build --release), then: docker build -t grpclb:0.1.0 .
FROM debian:bookworm-slim
COPY target/release/grpclb /usr/local/bin/grpclb
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/grpclb"]
