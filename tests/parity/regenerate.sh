#!/usr/bin/env bash
# Regenerates the PyTorch goldens of the training-parity guard (see README.md): exports collapse's
# initial weights, batches and mixup draws, then trains the float64 PyTorch reference on them.
set -euo pipefail
cd "$(dirname "$0")/../.."
inputs="$(mktemp -d)"
trap 'rm -rf "$inputs"' EXIT
deno run -A tests/parity/export_inputs.ts "$inputs"
/usr/bin/python3 tests/parity/torch_reference.py "$inputs" tests/parity/goldens "$@"
deno fmt tests/parity/goldens >/dev/null 2>&1 # the JSON in the repository style
