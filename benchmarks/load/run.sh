#!/usr/bin/env bash
# The load benchmark in one command; see benchmarks/load/run.py for what it does and its options.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python benchmarks/load/run.py "$@"
