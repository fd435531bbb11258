#!/bin/sh
# Write envs/conda-lock.yml (conda-lock's v1 format) from envs/environment.yml with rattler's
# solver, where a conda channel is reachable; the conda backends then install exactly it.
#
# Usage: sh envs/conda-lock.sh [--channel URL]... [--platform linux-64]... [--source FILE]
#                              [--output FILE]
# Channels default to the environment file's (conda-forge); platforms to linux-64. Needs a
# Python with py-rattler and PyYAML (pip install py-rattler pyyaml); set PYTHON to choose it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
source="$here/environment.yml" output="$here/conda-lock.yml"
channels=""
while [ $# -gt 0 ]; do
    case $1 in
        --source) source=$2; shift 2 ;;
        --output) output=$2; shift 2 ;;
        *) break ;;
    esac
done
# No --channel: the file's own channels, as the installer resolves them (.condarc included).
if ! printf '%s\n' "$@" | grep -qx -- --channel; then
    channels=$(PYTHONPATH="$here/../src" "${PYTHON:-python3}" -c \
        'import sys, pathlib; from daskhpc.install import channels as c
print(" ".join("--channel " + u for u in c.resolve([], pathlib.Path(sys.argv[1]))[0]))' \
        "$source")
fi
# shellcheck disable=SC2086
PYTHONPATH="$here/../src" exec "${PYTHON:-python3}" -m daskhpc.install.backends.rattler lock \
    --source "$source" --output "$output" $channels "$@"
