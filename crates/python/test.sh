#!/usr/bin/env bash
# Builds the wheel from the workspace, installs it into a virtualenv and runs the Python
# tests against it and the `ferrite` program of the same build.
#   crates/python/test.sh              (virtualenv: $FERRITE_VENV, default ~/.cache/ferrite-venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${FERRITE_VENV:-$HOME/.cache/ferrite-venv}"
TARGET="${CARGO_TARGET_DIR:-$(pwd)/target}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# maturin, ziglang (its linker for the portable wheel), numpy, pytest and Pillow (for the
# tests' PIL images), from PyPI.
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
# The portable wheel (manylinux2014: glibc 2.17 and later), linked by zig (PyPI `ziglang`),
# built in its own target folder so that it never invalidates the workspace's builds.
PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" build --release -q -m crates/python/Cargo.toml \
  --zig --compatibility manylinux2014 --target-dir "$TARGET/wheel" -o "$WHEELS"
"$VENV/bin/pip" install -q --force-reinstall --no-deps "$WHEELS"/ferrite-*.whl
"$VENV/bin/python" -m pytest -q crates/python/tests "$@"
