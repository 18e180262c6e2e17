"""Allowed ``Host`` headers of the HTTP trigger port (issue 12: DNS-rebinding protection).

A web page on ``evil.example`` whose DNS name is re-pointed at 127.0.0.1 can send requests to
a local engine from the victim's browser, and read the answers, since to the browser they are
same-origin. Those requests carry ``Host: evil.example``; refusing unknown hosts (400
``HOST_NOT_ALLOWED``) stops it.
"""

from __future__ import annotations

import ipaddress

from ...config.engine import EngineConfig

__all__ = ["LOOPBACK_HOSTS", "AllowedHosts", "allowed_hosts"]

#: The default list when the HTTP port is bound to a loopback address.
LOOPBACK_HOSTS = ("localhost", "*.localhost", "127.0.0.1", "[::1]")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(config: EngineConfig) -> AllowedHosts | None:
    """The checker for ``config.http_allowed_hosts`` (``None``: every host is allowed)."""
    names = config.http_allowed_hosts
    if names is None:
        if not _is_loopback(config.http_host):
            return None
        host = config.http_host
        names = [*LOOPBACK_HOSTS, f"[{host}]" if ":" in host else host]
    if "*" in names:
        return None
    return AllowedHosts(names)


class AllowedHosts:
    """Host names (``"app.example"``), subdomain wildcards (``"*.example"``) and addresses
    (``"10.0.0.1"``, ``"[::1]"``); the port of a ``Host`` header is ignored, case too."""

    def __init__(self, names: list[str] | tuple[str, ...]) -> None:
        exact: set[str] = set()
        suffixes: list[str] = []
        for name in names:
            name = name.strip().lower()
            if name.startswith("*."):
                suffixes.append(name[1:])  # ".example"
            else:
                exact.add(name)
        self.exact = frozenset(exact)
        self.suffixes = tuple(suffixes)

    def __call__(self, host: str) -> bool:
        """Whether a ``Host`` header value (``name[:port]``) is allowed."""
        host = host.strip().lower()
        if host.startswith("["):  # [v6]:port
            end = host.find("]")
            name = host[: end + 1] if end > 0 else host
        elif ":" in host:
            name = host.rpartition(":")[0]
        else:
            name = host
        name = name.rstrip(".")  # "localhost." is "localhost"
        if name in self.exact:
            return True
        return bool(self.suffixes) and name.endswith(self.suffixes)
