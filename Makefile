# The two commands of README's quick start. Each first installs (when absent) and starts what it
# needs with .ci/setup, which says what it does; the cargo target directory lives outside the
# clone so every checkout and CI run reuse one build cache.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/payplane-target

.PHONY: dev test
dev:   ## the whole platform on this machine (PostgreSQL, Redis, RabbitMQ installed/started first)
	.ci/setup servers
	cargo run -p payplane-cli -- dev

test:  ## every test, against real servers, after clippy with warnings denied
	.ci/setup tests
	cargo clippy --workspace --all-targets --all-features -- -D warnings
	cargo test --workspace
