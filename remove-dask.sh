#!/bin/sh
# remove-dask.sh: remove exactly what setup-dask.sh installed (read from its manifest).
# All options: sh remove-dask.sh --help
set -eu
here=$(cd "$(dirname "$0")" && pwd)
DASKHPC_COMMAND=remove exec sh "$here/setup-dask.sh" "$@"
