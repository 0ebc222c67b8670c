"""A Redis restart is told to every subscriber, on a real daphne (found by bench/soak.py, issue 17).

After Redis restarted, a process whose pooled Redis connection the restart
had broken (nothing had used it since) failed the first command of its
resync; the error ended its broker reader, and its subscribers then received
nothing, and no error, until the process was restarted. Now the reader subscribes
and resyncs again, and the subscribers get ``data_loss`` with a resume point.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import free_port, start_server, wait_for_port
from wsclient import connected

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def start_redis(port: int, workdir) -> subprocess.Popen:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process)
    return process


@pytest.fixture
def restartable_redis(tmp_path):
    port = free_port()
    processes = [start_redis(port, tmp_path)]

    def restart() -> None:
        processes[-1].terminate()
        processes[-1].wait(10)
        processes.append(start_redis(port, tmp_path))

    yield f"redis://127.0.0.1:{port}/0", restart
    processes[-1].terminate()
    processes[-1].wait(10)


async def test_subscribers_are_told_of_a_redis_restart_even_when_the_first_resync_fails(
    tmp_path, restartable_redis
):
    url, restart = restartable_redis
    server = start_server(tmp_path, env={"REDIS_URL": url})
    try:
        async with connected(server.ws_url) as sub:
            await sub.call(1, "interop.subscribe", {"topic": "restart"})
            assert (await sub.recv_for(1, timeout=10))["t"] == "ready"
            assert (await sub.result(2, "interop.publish", {"topic": "restart", "data": 1}))["t"] == "end"
            assert (await sub.recv_for(1, timeout=10))["t"] == "next"
            restart()
            frame = await sub.recv_for(1, timeout=20)
    finally:
        server.stop()
    assert (frame["t"], frame["code"]) == ("error", "data_loss")
    assert "resume" in frame["details"]
