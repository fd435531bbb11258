"""HPCCluster in a real ipykernel (the installed "Python (Dask)" kernel, through nbclient),
across three simulated nodes: what a user does in a notebook, checked on the nodes between cells.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hpc_user import PythonUser
from kernel_session import recorded_pids, wait_for

pytestmark = [pytest.mark.notebooks, pytest.mark.ssh_nodes, pytest.mark.timeout(600)]

IMPORTS = """
import json, os, socket, time
from dask.distributed import Client
from daskhpc import HPCCluster

def error_of(call):
    try:
        call()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None

def wait_workers(client, n, limit=90):
    deadline = time.monotonic() + limit
    while len(client.scheduler_info(n_workers=-1)["workers"]) != n:
        assert time.monotonic() < deadline, client.scheduler_info(n_workers=-1)["workers"]
        time.sleep(0.1)
"""


def records_exact(user: PythonUser, cluster_dir: Path, kernel: int) -> bool:
    """Every node's record file lists exactly the agent and worker processes running there
    (the kernel, the supervisor and its ssh clients are not the nodes' to record)."""
    supervisor = json.loads((cluster_dir / "supervisor.json").read_text())["pid"]
    python = f"{user.install.prefix}/bin/python"
    running = {host: {int(line.split()[0]) for line in lines
                      if line.split()[1] == python and int(line.split()[0]) not in
                      (kernel, supervisor)}
               for host, lines in user.bed.processes(str(user.install.prefix)).items()}
    return recorded_pids(cluster_dir) == running


def workers_per_node(user: PythonUser) -> dict[str, int]:
    """Distinct `dask worker --name` per node (a nanny and its forked worker share one)."""
    found = user.bed.processes(" distributed.cli.dask_worker ")
    return {host: len({line.split(" --name ")[1].split()[0] for line in lines})
            for host, lines in found.items()}


def test_start_compute_scale_adapt_logs_close(python_user: PythonUser):
    user = python_user
    with user.kernel() as kernel:
        kernel.run(IMPORTS)
        # Bad input: one line each, and nothing starts.
        errors = kernel.value(f"""
print(json.dumps([
    error_of(lambda: HPCCluster(workers=3)),
    error_of(lambda: HPCCluster(workers_per_node=0)),
    error_of(lambda: HPCCluster(hostfile={str(user.hostfile)!r}, memory_limit="900TiB")),
]))""")
        assert errors[0].startswith("TypeError: HPCCluster() got an unknown keyword 'workers'")
        assert "workers_per_node" in errors[0]
        assert "workers-per-node" in errors[1] or "workers_per_node" in errors[1]
        assert "900TiB" in errors[2] and "lower" in errors[2]
        assert all("\n" not in error for error in errors)
        assert user.cluster_dirs() == [] and user.leftovers(kernel.pid) == {}

        started = time.monotonic()
        info = kernel.value(f"""
cluster = HPCCluster(hostfile={str(user.hostfile)!r}, threads_per_worker=1)
client = Client(cluster)
total = client.submit(sum, range(101)).result()
print(json.dumps({{"id": cluster.cluster_id, "name": cluster.name, "repr": repr(cluster),
    "html": cluster._repr_html_(), "address": cluster.scheduler_address,
    "client_address": client.scheduler.address, "link": cluster.dashboard_link,
    "client_link": client.dashboard_link, "hosts": sorted(client.run(socket.gethostname).values()),
    "total": total, "spec": cluster.spec.cluster_dir}}))""")
        start_time = time.monotonic() - started
        assert info["total"] == 5050
        assert info["hosts"] == ["node1", "node2", "node3"]
        assert info["name"] == info["id"]
        assert info["address"].startswith(f"tls://{user.node.address}:")
        assert info["client_address"] == info["address"]
        assert info["repr"].startswith(f"HPCCluster({info['id']}, 'tls://")
        assert "workers=3" in info["repr"] and "HPCCluster" in info["html"]
        assert info["link"] == info["client_link"]
        assert info["link"].startswith(f"http://{user.node.address}:")
        cluster_dir = Path(info["spec"])
        # The same cluster as the CLI's: status lists it, its scheduler file is the default.
        [status] = user.status()
        assert status["id"] == info["id"] and status["workers"] == 3
        scheduler_file = user.home / "dask-scheduler.json"
        assert json.loads(scheduler_file.read_text())["address"] == info["address"]
        assert wait_for(lambda: records_exact(user, cluster_dir, kernel.pid), what="exact records")

        # Scale down: graceful retirement, no process left of the retired, records exact.
        kept = kernel.value("""
future = client.submit(list, range(1000))
future.result()
cluster.scale(1)
wait_workers(client, 1)
print(json.dumps(sum(future.result())))""")
        assert kept == sum(range(1000))  # the data moved off the retired workers
        # retired workers exit by themselves within seconds of leaving the scheduler
        assert wait_for(lambda: sorted(workers_per_node(user).values()) == [0, 0, 1],
                        what="one worker process left")
        assert wait_for(lambda: records_exact(user, cluster_dir, kernel.pid), what="exact records")
        assert wait_for(lambda: user.status()[0]["workers"] == 1, what="status 1 worker")
        # status expects what the cluster was scaled to, not what it was planned with
        assert sorted(node["expected_workers"] for node in user.status()[0]["nodes"]) == [0, 0, 1]

        kernel.run("cluster.scale(3); wait_workers(client, 3)")
        assert workers_per_node(user) == {"node1": 1, "node2": 1, "node3": 1}
        assert wait_for(lambda: records_exact(user, cluster_dir, kernel.pid), what="exact records")

        # Past the allocation, with no worker jobs configured: one line, nothing changes.
        error = kernel.value("print(json.dumps(error_of(lambda: cluster.scale(4))))")
        assert error.startswith("DaskhpcError: scale(4): the allocation holds 3 workers")
        assert "DASKHPC_JOBQUEUE" in error and "\n" not in error

        # distributed's Adaptive: shrinks an idle cluster to its minimum, grows under load.
        sizes = kernel.value("""
adaptive = cluster.adapt(minimum=1, maximum=3, interval="200ms", wait_count=2,
                         target_duration="1s")
wait_workers(client, 1)
idle = len(client.scheduler_info(n_workers=-1)["workers"])
# a minute of work for one thread: Adaptive asks for all 3 (on a loaded machine a worker takes
# long enough to start that the first ones may retire before the last has joined)
futures = client.map(lambda x: time.sleep(0.5) or x, range(120), pure=False)
busy = 1
while not all(future.done() for future in futures):
    busy = max(busy, len(client.scheduler_info(n_workers=-1)["workers"]))
    time.sleep(0.1)
assert sum(client.gather(futures)) == sum(range(120))
del futures
wait_workers(client, 1)
print(json.dumps([idle, busy, len(client.scheduler_info(n_workers=-1)["workers"]),
                  adaptive.minimum, adaptive.maximum]))""")
        idle, busy, after, minimum, maximum = sizes
        assert (idle, after, minimum, maximum) == (1, 1, 1, 3)
        assert busy > 1  # grew under load
        assert wait_for(lambda: records_exact(user, cluster_dir, kernel.pid), what="exact records")

        # Scaling by hand ends adaptive scaling: the idle cluster keeps the workers asked for.
        kept = kernel.value("""
cluster.scale(3)
wait_workers(client, 3)
time.sleep(2)  # ten of the Adaptive's intervals: it would have retired two by now
print(json.dumps([len(client.scheduler_info(n_workers=-1)["workers"]),
                  adaptive.periodic_callback is None]))""")
        assert kept == [3, True]

        logs = kernel.value("""
logs = cluster.get_logs()
print(json.dumps({name: len(text) for name, text in logs.items()}))""")
        assert {"Cluster", "Scheduler", "Supervisor", "node1 (node)", "node2 (node)",
                "node3 (node)"} <= set(logs)
        assert all(logs[f"node{i} (node)"] > 0 for i in (1, 2, 3))

        kernel.run("adaptive.stop(); client.close(); cluster.close()")
        assert user.leftovers(kernel.pid) == {}
        assert user.status() == []
        assert not scheduler_file.exists()
        assert (cluster_dir / "stopped").exists()
    print(f"HPCCluster() in the kernel took {start_time:.1f} s to start")


def test_attach_to_cli_cluster_and_stop_python_cluster_with_cli(python_user: PythonUser):
    user = python_user
    started = user.command("start-dask-cluster", "--hostfile", str(user.hostfile),
                           "--threads-per-worker", "1")
    assert started.returncode == 0, started.stderr
    [cli_cluster] = user.status()
    with user.kernel(JUPYTERHUB_SERVICE_PREFIX="/user/alice/") as kernel:
        kernel.run(IMPORTS)
        # A notebook written for a LocalCluster: only its connect line changes.
        info = kernel.value("""
client = Client(HPCCluster.current())
client.cluster.scale(2)
wait_workers(client, 2)
print(json.dumps({"id": client.cluster.name, "total": client.submit(sum, [1, 2]).result(),
                  "link": client.dashboard_link}))""")
        assert info["id"] == cli_cluster["id"] and info["total"] == 3
        # under JupyterHub the link goes through the user's server, as the CLI prints it
        host_port = cli_cluster["dashboard"].split("://")[1]  # node1's address:port/status
        assert info["link"] == f"/user/alice/proxy/{host_port}"
        assert wait_for(lambda: user.status()[0]["workers"] == 2, what="status 2 workers")

        # Closing an attached object leaves the cluster running; from_id attaches again.
        kernel.run(f"""
client.close(); client.cluster.close()
again = HPCCluster.from_id({cli_cluster['id']!r})
with Client(again) as client:
    assert client.submit(sum, [1, 2]).result() == 3
again.close()""")
        [still] = user.status()
        assert still["id"] == cli_cluster["id"] and still["state"] == "running"
        errors = kernel.value("""
print(json.dumps([error_of(lambda: HPCCluster.from_id("20990101-000000-abcdef")),
                  error_of(lambda: HPCCluster.from_name("nope"))]))""")
        assert all(error.startswith("DaskhpcError: no cluster") for error in errors)
        kernel.run(f"HPCCluster.from_name({cli_cluster['id']!r}).shutdown()")
        assert user.status() == [] and user.leftovers(kernel.pid) == {}

        # As a context manager: the block's end stops it.
        total = kernel.value(f"""
with HPCCluster(hostfile={str(user.hostfile)!r}, threads_per_worker=1) as made:
    with Client(made) as client:
        total = client.submit(sum, [1, 2]).result()
print(json.dumps(total))""")
        assert total == 3 and user.status() == [] and user.leftovers(kernel.pid) == {}

        # The reverse: a cluster made in Python, stopped by stop-dask-cluster.
        made = kernel.value(f"""
made = HPCCluster(hostfile={str(user.hostfile)!r}, threads_per_worker=1)
print(json.dumps(made.cluster_id))""")
        stopped = user.command("stop-dask-cluster", made)
        assert stopped.returncode == 0, stopped.stderr
        assert user.leftovers(kernel.pid) == {}
        kernel.run("made.close()")
        assert user.status() == []



def test_kernel_killed_with_its_cluster_open(python_user: PythonUser):
    """Documented choice: a cluster made by HPCCluster() ends with the process that made it."""
    user = python_user
    with user.kernel() as kernel:
        kernel.run(IMPORTS)
        cluster_id = kernel.value(f"""
cluster = HPCCluster(hostfile={str(user.hostfile)!r}, threads_per_worker=1)
client = Client(cluster)
print(json.dumps(cluster.cluster_id))""")
        assert [info["id"] for info in user.status()] == [cluster_id]
        killed = time.monotonic()
        kernel.kill()
        wait_for(lambda: user.leftovers() == {}, limit=60, what="no process on the nodes")
        gone_after = time.monotonic() - killed
        assert wait_for(lambda: user.status() == [], limit=30, what="status lists nothing")
    assert not (user.home / "dask-scheduler.json").exists()
    [cluster_dir] = user.cluster_dirs()
    assert (cluster_dir / "stopped").exists()
    print(f"cluster gone {gone_after:.1f} s after the kernel was killed")
