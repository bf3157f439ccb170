#!/usr/bin/env bash
# Builds Stripe's official mock server (a Go program from the Go module proxy) once into
# ~/.cache and prints the path of the binary. The Stripe contract test runs the adapter's v1
# verification call against it (STRIPE_MOCK_BIN). It serves only Stripe's v1 API: the Managed
# API Keys calls (/v2/iam/api_keys) are not among its routes.
set -euo pipefail
version=v0.203.0
dir="$HOME/.cache/stripe-mock-$version"
if [ ! -x "$dir/stripe-mock" ]; then
  command -v go >/dev/null || { echo "build-stripe-mock.sh: Go is needed to build stripe-mock" >&2; exit 1; }
  GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/stripe/stripe-mock@$version" >&2
fi
"$dir/stripe-mock" -h >/dev/null 2>&1 || [ $? -le 2 ] || { echo "build-stripe-mock.sh: $dir/stripe-mock does not run" >&2; exit 1; }
echo "$dir/stripe-mock"
