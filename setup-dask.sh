#!/bin/sh
# setup-dask.sh: install daskhpc (Dask environment, Jupyter kernel, wrappers). See README.md.
# This bootstrap only finds a Python (standard library is enough) and hands over to
# `python -m daskhpc setup`, which does the work. All options: sh setup-dask.sh --help
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command=${DASKHPC_COMMAND:-setup}
. "$here/bin/find-python.sh"
python=$(daskhpc_find_python) || {
    echo "$(basename "$0"): error: no usable Python found (need python3 >= 3.9, or conda/mamba/micromamba on PATH); install python3 or load a conda module, then re-run" >&2
    exit 3
}
PYTHONPATH="$here/src" exec "$python" -m daskhpc "$command" "$@"
