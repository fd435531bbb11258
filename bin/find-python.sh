# Sourced by setup-dask.sh and remove-dask.sh: daskhpc_find_python prints the first
# Python >= 3.9 found; daskhpc_no_python NAME says there is none and exits.
# Order: $DASKHPC_PYTHON, python3/python on PATH, then the Python of a conda installation
# (from $CONDA_EXE / $MAMBA_EXE or conda, mamba, micromamba on PATH).

daskhpc_python_ok() {
    [ -n "$1" ] && [ -x "$1" ] &&
        "$1" -c 'import sys; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1
}

daskhpc_find_python() {
    for candidate in "${DASKHPC_PYTHON:-}" "$(command -v python3 || true)" \
        "$(command -v python || true)"; do
        if daskhpc_python_ok "$candidate"; then echo "$candidate"; return 0; fi
    done
    for tool in "${CONDA_EXE:-}" "${MAMBA_EXE:-}" "$(command -v conda || true)" \
        "$(command -v mamba || true)" "$(command -v micromamba || true)"; do
        [ -n "$tool" ] || continue
        # conda/mamba live in <base>/bin (or condabin) next to the base Python; micromamba
        # has no Python of its own, but its root prefix may.
        for candidate in "$(dirname "$tool")/python" "$(dirname "$(dirname "$tool")")/bin/python" \
            "${MAMBA_ROOT_PREFIX:-/nonexistent}/bin/python"; do
            if daskhpc_python_ok "$candidate"; then echo "$candidate"; return 0; fi
        done
    done
    return 1
}

daskhpc_no_python() {
    echo "$1: error: no usable Python found (need python3 >= 3.9, or conda/mamba/micromamba on PATH); install python3 or load a conda module, then re-run" >&2
    exit 3
}
