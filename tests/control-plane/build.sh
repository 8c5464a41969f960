#!/usr/bin/env bash
# Builds the real control-plane binaries that tests/control-plane (the Rust test-support crate)
# runs: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, from the Go
# module proxy, into a cache outside the repository:
#
#   ${PAYPLANE_CONTROL_PLANE_DIR:-$HOME/.cache/payplane-control-plane}/<stamp>/bin/
#
# <stamp> is a hash of the Go modules under go/ (go.mod, go.sum, *.go) and of the build flags
# below, so a version bump rebuilds into a new directory while an unchanged tree skips the build
# (a few milliseconds). Idempotent and safe to run concurrently (a lock serialises builds).
#
#   build.sh                 build when needed, then print one line per binary
#   build.sh --print-bin-dir print the bin directory for the current stamp, build nothing
#
# The cold build compiles k8s.io/kubernetes and takes a long while on 2 cores (see README.md).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${PAYPLANE_CONTROL_PLANE_DIR:-$HOME/.cache/payplane-control-plane}

# Version stamps that upstream's release scripts put into the binaries with -X: without them
# `kubectl version` and GET /version report v0.0.0-master. Keep in step with go/kube/go.mod.
kube_version=v1.36.3
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=36"
  kube_ldflags+=" -X $pkg.gitTreeState=clean"
done
kwok_ldflags="-s -w"
build_flags="GOFLAGS=-trimpath -buildvcs=false | kube: $kube_ldflags | kwok: $kwok_ldflags"

stamp() {
  # Sorted relative paths and their sha256, then the flags: the same tree gives the same stamp
  # wherever the repository is checked out.
  {
    (cd "$here/go" && find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum)
    printf '%s\n' "$build_flags"
  } | sha256sum | cut -c1-16
}

bin_dir="$cache_root/$(stamp)/bin"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

if [ "${1:-}" = "--print-bin-dir" ]; then
  printf '%s\n' "$bin_dir"
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: $0 [--print-bin-dir]" >&2
  exit 2
fi

print_binaries() {
  for b in "${binaries[@]}"; do
    printf '[control-plane] %-24s %s\n' "$b" "$bin_dir/$b"
  done
}

complete() {
  for b in "${binaries[@]}"; do [ -x "$bin_dir/$b" ] || return 1; done
}

if complete; then
  print_binaries
  exit 0
fi

go_bin=$(command -v go || true)
[ -n "$go_bin" ] || go_bin=/usr/local/go/bin/go
if [ ! -x "$go_bin" ]; then
  echo "[control-plane] no Go toolchain found (PATH or /usr/local/go/bin/go); go/kube/go.mod says which" >&2
  exit 1
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.build.lock"
flock 9
# Another run may have finished the build while this one waited for the lock.
if complete; then
  print_binaries
  exit 0
fi

# Build into a scratch directory and rename it into place at the end, so that an interrupted
# build never leaves a bin/ that looks complete.
staging="$cache_root/$(stamp)/bin.partial.$$"
rm -rf "$staging"
mkdir -p "$staging"
trap 'rm -rf "$staging"' EXIT

export GOFLAGS="-trimpath -buildvcs=false"
start=$(date +%s)
echo "[control-plane] building with $("$go_bin" version | cut -d' ' -f3) into $bin_dir (cold: tens of minutes on 2 cores)" >&2
# One `go build` for the four main packages of the kube module: they share almost every package,
# so the go command compiles each dependency once for all of them.
(cd "$here/go/kube" && nice -n 10 "$go_bin" build -ldflags="$kube_ldflags" -o "$staging/" ./cmd/...)
(cd "$here/go/kwok" && nice -n 10 "$go_bin" build -ldflags="$kwok_ldflags" -o "$staging/kwok" sigs.k8s.io/kwok/cmd/kwok)
rm -rf "$bin_dir"
mv "$staging" "$bin_dir"
trap - EXIT
echo "[control-plane] built in $(($(date +%s) - start))s" >&2
print_binaries
