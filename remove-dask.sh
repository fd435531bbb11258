#!/bin/sh
# remove-dask.sh: remove exactly what setup-dask.sh installed (read from its manifest).
# All options: sh remove-dask.sh --help
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bin/find-python.sh"
python=$(daskhpc_find_python) || daskhpc_no_python remove-dask.sh
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$here/src" exec "$python" -m daskhpc remove "$@"
