"""Offline is a tested mode: the socket guard catches a connect, and the commands that other
tests run under it (training in one process and under the DeepSpeed launcher, answering, merge,
export, the demo script) never reach another host."""

from __future__ import annotations

import subprocess
import sys

from offline import assert_stayed_offline, offline_env


def test_the_guard_refuses_and_records_a_connect_to_another_host(tmp_path):
    log = tmp_path / "sockets.log"
    code = (
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); port = s.getsockname()[1]\n"
        "socket.create_connection(('127.0.0.1', port)).close()\n"  # loopback: allowed (gloo, DeepSpeed)
        "try:\n    socket.create_connection(('198.51.100.7', 443), timeout=1)\n"
        "except OSError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=offline_env(log), capture_output=True, text=True)
    assert "socket guard" in result.stdout, result.stderr
    assert "198.51.100.7" in log.read_text()
    try:
        assert_stayed_offline(log)
    except AssertionError as error:
        assert "198.51.100.7" in str(error)
    else:
        raise AssertionError("assert_stayed_offline passed with a recorded connect")


def test_a_hub_id_lookup_is_refused_under_the_guard(tmp_path):
    log = tmp_path / "sockets.log"
    code = "import socket\ntry:\n    socket.getaddrinfo('huggingface.co', 443)\nexcept OSError as e:\n    print(e)\n"
    result = subprocess.run([sys.executable, "-c", code], env=offline_env(log), capture_output=True, text=True)
    assert "refused" in result.stdout and "huggingface.co" in log.read_text()
