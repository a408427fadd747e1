"""A real multi-node Ray cluster on this one machine, made with the `ray start` command.

For the tests and benchmarks that must join a cluster with `--address` without a second machine, and
for trying that path by hand. Every node gets its own ports and the cluster its own temp dir, so it
neither collides with nor stops anyone else's Ray on the same machine (`ray stop` would stop them all).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import psutil

from evolve.errors import ClusterError


class LocalCluster:
    """`with LocalCluster(head_cpus=2, node_cpus=[1]) as cluster:` ... `cluster.address` ..."""

    def __init__(self, head_cpus: int = 1, node_cpus: tuple[int, ...] = (1,)):
        self.head_cpus = head_cpus
        self.node_cpus = node_cpus
        self.temp_dir = tempfile.mkdtemp(prefix="evray-")  # short: Ray's socket paths must stay short
        self.address = f"127.0.0.1:{_free_port()}"
        # The same token mode everywhere: `ray start` turns it on by itself only on the head.
        self.env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}

    def __enter__(self) -> "LocalCluster":
        port = self.address.rpartition(":")[2]
        try:
            if self.env["RAY_AUTH_MODE"] == "token":
                self._ensure_token()
            self._ray_start("--head", f"--port={port}", f"--num-cpus={self.head_cpus}", "--include-dashboard=false",
                            f"--ray-client-server-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}")
            for cpus in self.node_cpus:
                self._ray_start(f"--address={self.address}", f"--num-cpus={cpus}",
                                f"--dashboard-agent-listen-port={_free_port()}")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _ensure_token(self) -> None:
        """`ray start --head` in token mode needs a token and, unlike `ray.init()`, makes none: on a
        machine that never ran Ray, make the one `ray.init()` would (~/.ray/auth_token), unless the
        environment names one."""
        self._ray("get-auth-token", "--generate")

    def _ray_start(self, *args: str) -> None:
        self._ray("start", *args, f"--temp-dir={self.temp_dir}", "--disable-usage-stats")

    def _ray(self, *args: str) -> None:
        cmd = [os.path.join(os.path.dirname(sys.executable), "ray"), *args]
        done = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise ClusterError(f"`{' '.join(cmd)}` failed: {done.stderr.strip().splitlines()[-1:]}")

    def stop(self) -> None:
        """End this cluster's processes (found by its temp dir) and nothing else."""
        me = os.getpid()
        procs = [
            p for p in psutil.process_iter(["cmdline"])
            if p.pid != me and any(self.temp_dir in arg for arg in (p.info["cmdline"] or ()))
        ]
        family = set(procs)
        for p in procs:
            try:
                family.update(p.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
        for p in family:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(list(family), timeout=3)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
