"""Refuse and record every attempt to reach the network (used by test_offline.py).

Installed before Cadence is imported; Unix-domain sockets (asyncio's own wake-up pipe)
stay allowed, anything with an IP address or a host name to look up is refused.
"""

import socket

attempts: list[str] = []


def _refuse(what: str):
    attempts.append(what)
    raise OSError(f"network access blocked by test: {what}")


def install() -> None:
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto = socket.socket.sendto

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse(f"connect {address}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse(f"connect_ex {address}")
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse(f"sendto {args[-1]}")
        return real_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        _refuse(f"getaddrinfo {host}")

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = lambda host: _refuse(f"gethostbyname {host}")
