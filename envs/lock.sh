#!/bin/sh
# Regenerate envs/requirements.lock (the venv backend's input) from envs/environment.yml.
#
# The conda dependency list is turned into PyPI requirements: python, pip and python-graphviz
# (conda-forge's graphviz program comes with it; PyPI has no such thing) are dropped,
# conda-forge names that differ on PyPI are renamed (matplotlib-base -> matplotlib,
# jupyterhub-base -> jupyterhub), conda's
# "name >=x" specs become "name>=x", and the pip: section is taken as is. `uv pip compile`
# then resolves them in universal mode (every OS and architecture) for Python >= 3.11 (the
# lowest Python the stack supports: numpy 2.4 and pandas 3 need it; Debian 12 ships 3.11) and
# writes every wheel/sdist hash, so installs run with --require-hashes.
#
# Usage: sh envs/lock.sh [extra uv pip compile args, e.g. --upgrade-package dask]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
uv=${UV:-uv}
input=$(mktemp "${TMPDIR:-/tmp}/daskhpc-lock-input.XXXXXX")
trap 'rm -f "$input"' EXIT INT TERM

# Two-space "- item" lines are conda packages, deeper ones belong to the pip: section.
awk '
    /^dependencies:/ { in_deps = 1; next }
    in_deps && /^[^ #]/ { in_deps = 0 }
    !in_deps { next }
    /^  - pip:/ { next }
    /^    - / { sub(/^    - /, ""); print; next }
    /^  - / {
        sub(/^  - /, "")
        split($0, parts, " ")
        name = parts[1]
        spec = substr($0, length(name) + 1)
        gsub(/ /, "", spec)
        # python-graphviz needs the dot program, which PyPI does not have: the venv renders
        # graphs through ipycytoscape instead.
        if (name == "python" || name == "pip" || name == "python-graphviz") next
        if (name == "matplotlib-base") name = "matplotlib"
        if (name == "jupyterhub-base") name = "jupyterhub"
        print name spec
    }
' "$here/environment.yml" >"$input"

"$uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
    --no-header --custom-compile-command "sh envs/lock.sh" \
    --output-file "$here/requirements.lock" "$@" "$input"
# uv names the (temporary) input file in "via" comments; name the real source instead.
sed -i "s|$input|envs/environment.yml|g" "$here/requirements.lock"
echo "wrote $here/requirements.lock"
