# One image recipe for every payplane binary:
#   docker build --build-arg BIN=payplane-operator -t ghcr.io/payplane/operator:0.1.0 .
#   docker build --build-arg BIN=payplane-payments -t ghcr.io/payplane/payments:0.1.0 .
# BIN is one of payplane-operator, payplane-gateway, payplane-auth, payplane-payments,
# payplane-admin, payplane-profile, payplane-console or payplane (the CLI).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
ARG BIN=payplane-operator
# aws-lc-sys (the one rustls crypto provider) builds C code with cmake and clang.
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin "${BIN}" \
    && cp "target/release/${BIN}" /app

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /app /usr/local/bin/app
# Numeric (distroless's nonroot is 65532): pods set runAsNonRoot, and the kubelet can only
# verify that for a numeric user. The operator's pods and the chart say the same numbers.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/app"]
