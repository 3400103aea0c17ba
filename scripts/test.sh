#!/usr/bin/env bash
# Set up, lint (ruff), then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
# two workers (pytest-xdist), one test file per worker at a time (see tests/conftest.py);
# TEST_WORKERS=0 runs everything in this process
.venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
