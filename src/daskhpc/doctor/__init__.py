"""dask-cluster-doctor: every known cause of a failed start, found before anything starts.

    command.py   the runner: gathers the context, runs each check family, prints, exits
    context.py   what the checks look at: options, allocation, launcher, the nodes' reports
    probing.py   runs probe.py on every node at once through the chosen launcher
    probe.py     the short program run on each node (reports facts, leaves nothing behind)
    findings.py  one finding = one line: ok / warning / problem, what was found, the fix
    hint.py      the doctor command line start-dask-cluster prints after a failed start
    paths.py     can a path be written: shared with start-dask-cluster's up-front checks
    mounts.py    which filesystem a path is on, and whether it is node-local
    checks/      one module per check family, each `check(context) -> list[Finding]`
"""
