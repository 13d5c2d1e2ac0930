"""The base URL of an OpenAI-compatible server, as the load generator and the report take it."""

from __future__ import annotations

import ipaddress
import urllib.parse

from bench.core.errors import ConfigError


def base_url(text: str, flag: str = "--endpoint") -> str:
    """An http(s) URL of a server: its scheme, host, port and path, without a trailing /v1; no
    credentials in it (an API key belongs in an environment variable: a URL is written to the
    report), no query or fragment."""
    try:
        u = urllib.parse.urlsplit(text.strip())
        port = u.port
    except ValueError as exc:
        raise ConfigError(f"{flag}: not a URL ({exc})") from None
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ConfigError(f"{flag}: expected http://HOST[:PORT][/PATH], got {text[:80]!r}")
    if u.username or u.password:
        raise ConfigError(f"{flag}: credentials in the URL would be written to the report; name an environment "
                          "variable holding the key with --api-key-env")
    if u.query or u.fragment:
        raise ConfigError(f"{flag}: the base URL takes no query or fragment")
    path = u.path.rstrip("/")
    path = path[:-3] if path.endswith("/v1") else path
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{u.scheme}://{host}{f':{port}' if port else ''}{path}"


def is_local(url: str) -> bool:
    """The endpoint is on this machine: a loopback address or localhost."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
