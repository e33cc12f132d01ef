#!/usr/bin/env bash
# Builds the wheel from the workspace, installs it into a virtualenv and runs the Python
# tests against it and the `ferrite` program of the same build.
#   crates/python/test.sh              (virtualenv: $FERRITE_VENV, default ~/.cache/ferrite-venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${FERRITE_VENV:-$HOME/.cache/ferrite-venv}"
TARGET="${CARGO_TARGET_DIR:-$(pwd)/target}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# maturin, numpy, pytest and Pillow (for the tests' PIL images), from PyPI.
"$VENV/bin/pip" install -q -r crates/python/requirements-test.txt
# The `ferrite` program the tests compare with: $FERRITE_BIN when given (.ci/run passes the
# one `cargo test` just built), else built here.
if [ -z "${FERRITE_BIN:-}" ]; then
  cargo build --release -p ferrite
  FERRITE_BIN="$TARGET/release/ferrite"
fi
export FERRITE_BIN
WHEELS="$(mktemp -d)"
trap 'rm -rf "$WHEELS"' EXIT
"$VENV/bin/maturin" build --release -q -m crates/python/Cargo.toml -o "$WHEELS"
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$WHEELS"/ferrite-*.whl
"$VENV/bin/python" -m pytest -q crates/python/tests "$@"
