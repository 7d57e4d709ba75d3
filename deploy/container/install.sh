#!/bin/sh
# The image's install steps, in one place: the Containerfile runs this script, and so does
# tests/integration/test_image_install.py (into a fresh virtual environment), so what the
# image holds is what the test checked.
#
#   install.sh SRC VENV
#
# SRC: a folder with pyproject.toml, README.md, LICENSE and etl/ (what the Containerfile
# copies); VENV: the virtual environment to create.  PYTHON (default python3) is the
# interpreter the venv is made from: in the image, the runtime stage's own Python, at the
# same path, so the venv can be copied into it.  Whatever pip reads from the environment
# (PIP_INDEX_URL, PIP_NO_CACHE_DIR, ...) applies.
set -eu
src=${1:?usage: install.sh SRC VENV}
venv=${2:?usage: install.sh SRC VENV}
python=${PYTHON:-python3}

"$python" -m venv "$venv"
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
# 1. the wheel, built from the sources as `pip install wheels-etl` would get it
"$venv/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$wheels" "$src"
# 2. the wheel and its dependencies (binary wheels only: nothing is compiled)
"$venv/bin/python" -m pip install --quiet --only-binary=:all: "$wheels"/wheels_etl-*.whl
# 3. it runs
"$venv/bin/wheels-etl" --version
