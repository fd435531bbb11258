#!/bin/sh
# Prepare everything the tests need: Debian packages (as root) and .venv with the locked stack,
# daskhpc itself (editable) and the test tools. Safe to re-run.
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    packages=$(sed 's/#.*//' tests/system-packages.txt | tr '\n' ' ')
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends $packages >/dev/null
fi
# JupyterHub's proxy for the jupyterhub tests (lands in the prefix's bin, /usr/bin here).
if [ "$(id -u)" = 0 ] && command -v npm >/dev/null 2>&1 \
        && ! command -v configurable-http-proxy >/dev/null 2>&1; then
    npm install -g --silent configurable-http-proxy@5.3.0 >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# uv: the venv's own, else one on PATH, else pip-installed into the venv (a venv made by uv
# has no pip).
if [ -x .venv/bin/uv ]; then
    uv=.venv/bin/uv
elif command -v uv >/dev/null 2>&1; then
    uv=uv
else
    .venv/bin/python -m pip install -q uv
    uv=.venv/bin/uv
fi
"$uv" pip install -q --python .venv/bin/python --compile-bytecode --require-hashes \
    -r envs/requirements.lock
"$uv" pip install -q --python .venv/bin/python --compile-bytecode -r tests/requirements.txt
"$uv" pip install -q --python .venv/bin/python --no-deps -e .
