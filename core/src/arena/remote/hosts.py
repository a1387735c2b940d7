"""The host grammar of every remote family: ``HOST``, ``HOST:PORT``, IPv6, replica lists.

``gpu-box``, ``gpu-box:5556``, ``10.0.0.2``, ``[::1]:8000``, ``::1`` (bare IPv6, default
port), and comma-separated replica lists ``a:8000,b:8000`` (a host listed twice is weighted
twice). A family may accept its own URL scheme (``tcp://`` for GR00T's ZeroMQ addresses);
any other ``scheme://`` is refused, naming the entry. Imports nothing from arena, so wire
layers may use it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["HostPort", "HostSpec", "parse_host", "parse_hosts", "host_label", "is_ipv6"]

HostPort = tuple[str, int]
HostSpec = str | Sequence[str | HostPort]


def parse_host(spec: str | HostPort, default_port: int, schemes: Sequence[str] = ()) -> HostPort:
    """One entry -> ``(host, port)``; ValueError naming the entry and what is wrong with it."""
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise ValueError(f"host must be (host, port), got {spec!r}")
        return _checked(str(spec[0]), spec[1], repr(spec))
    if not isinstance(spec, str):
        raise TypeError(f"host spec must be a string or a (host, port) tuple, got {type(spec).__name__}")
    text = spec.strip()
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme not in schemes:
            accepted = f"; or {', '.join(s + '://' for s in schemes)} addresses" if schemes else ""
            raise ValueError(f"host spec {spec!r} looks like a URL; give 'host' or 'host:port'{accepted}")
        text = rest
    if not text:
        raise ValueError("empty host spec; expected 'host' or 'host:port'")
    if text.startswith("["):  # [v6]:port or [v6]
        close = text.find("]")
        if close < 0:
            raise ValueError(f"host spec {spec!r}: missing ']' after an IPv6 address")
        host, rest = text[1:close], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"host spec {spec!r}: expected ':port' after ']'")
        port_text = rest[1:] if rest else None
    elif text.count(":") > 1:  # bare IPv6 without a port
        host, port_text = text, None
    else:
        host, sep, port_text = text.partition(":")
        port_text = port_text if sep else None
    return _checked(host, default_port if port_text is None else port_text, repr(spec))


def _checked(host: str, port: object, what: str) -> HostPort:
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise ValueError(f"host spec {what}: invalid host name {host!r}")
    try:
        port_num = int(port)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"host spec {what}: port {port!r} is not a number") from None
    if not 1 <= port_num <= 65535:
        raise ValueError(f"host spec {what}: port {port_num} is outside 1..65535")
    return host, port_num


def parse_hosts(spec: HostSpec | HostPort, default_port: int, schemes: Sequence[str] = ()) -> list[HostPort]:
    """``"a:5555,b:5556"`` (or a list of entries / tuples) -> ``[(host, port), ...]``, at least one.

    A lone ``("host", port)`` tuple is one host, not two entries.
    """
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], int):
        return [parse_host(spec, default_port, schemes)]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    if isinstance(spec, str) and any(not s.strip() for s in items):
        raise ValueError(f"host list {spec!r} has an empty entry (expected 'host[:port],host[:port],...')")
    hosts = [parse_host(s, default_port, schemes) for s in items]
    if not hosts:
        raise ValueError("no hosts given (expected 'host[:port],host[:port],...')")
    return hosts


def is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def host_label(host: str, port: int) -> str:
    """``host:port`` for messages (``[v6]:port`` for IPv6 literals)."""
    return f"[{host}]:{port}" if is_ipv6(host) else f"{host}:{port}"
