#!/bin/sh
# setup-dask.sh: install daskhpc (Dask environment, Jupyter kernel, wrappers). See README.md.
# This bootstrap only finds a Python (standard library is enough) and hands over to
# `python -m daskhpc setup`, which does the work. All options: sh setup-dask.sh --help
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bin/find-python.sh"
python=$(daskhpc_find_python) || daskhpc_no_python setup-dask.sh
# No __pycache__ in the checkout: it may be read-only, shared, or compared after removal.
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$here/src" exec "$python" -m daskhpc setup "$@"
