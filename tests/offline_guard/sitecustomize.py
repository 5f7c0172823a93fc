"""Test helper: a socket guard that every Python process started with this folder on PYTHONPATH loads.

With ``LLAVA_SOCKET_GUARD_LOG`` set, any connect or name lookup to a host other than this
machine (loopback, the host's own name, Unix sockets) is written to that file and refused.
The offline tests run the real commands (training, the DeepSpeed launcher and its workers,
answering, merge, export, the demo script) under it and fail when the file appears.
"""

import os
import socket

_LOG = os.environ.get("LLAVA_SOCKET_GUARD_LOG")

if _LOG:
    import ipaddress

    _LOCAL_NAMES = {"", "localhost", "localhost.localdomain", socket.gethostname()}
    try:
        _LOCAL_NAMES.add(socket.getfqdn())
    except OSError:
        pass

    def _local(host) -> bool:
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if host is None or host in _LOCAL_NAMES:
            return True
        try:
            address = ipaddress.ip_address(str(host).split("%")[0])
        except ValueError:
            return False
        return address.is_loopback or address.is_unspecified

    def _refuse(what: str):
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"pid {os.getpid()}: {what}\n")
        raise OSError(f"socket guard: {what} refused (this test runs offline)")

    def _checked(original):
        def method(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
                _refuse(f"connect to {address!r}")
            return original(self, address)

        return method

    socket.socket.connect = _checked(socket.socket.connect)
    socket.socket.connect_ex = _checked(socket.socket.connect_ex)
    _getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if not _local(host):
            _refuse(f"name lookup of {host!r}")
        return _getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
