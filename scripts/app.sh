#!/usr/bin/env bash
# Set up, build the simulated demo world if absent, and start the app on http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m core demo ensure
exec .venv/bin/streamlit run app.py "$@"
