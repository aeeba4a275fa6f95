#!/usr/bin/env bash
# Set up .venv from the project's own files and run the whole test suite.
# torch==2.13.0 (pinned in pyproject.toml) is the CPU build; the real data is read from ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,slicer]"
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
