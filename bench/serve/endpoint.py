"""The server a run loads over HTTP, before any request is sent: its URL (`--endpoint`), its key
(`--api-key-env`), and what it says of itself (GET /v1/models).

The URL is refused where it holds a space or a control character, credentials, a query or a
fragment. The key must be a bearer token as RFC 6750 spells one and is never shown. The probe
follows no redirect (the key would go with it) and uses no proxy from the environment (aiohttp's
`trust_env` is off), takes PROBE_S for the whole answer, connection to last byte (a server that
drips a byte at a time cannot hold it), and refuses a listing that is not an OpenAI model list.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import unicodedata
import urllib.parse

from bench.core.errors import ConfigError
from bench.core.text import clip, redact, terminal_safe

PROBE_S = 10.0  # GET /v1/models, connection to its last byte
MAX_LISTING = 1 << 20  # the model list's bytes at most
MAX_MODELS = 1000  # models of a listing read at most
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{1,8192}=*")  # RFC 6750 section 2.1: b64token
_HOST = re.compile(r"[\w.\-]{1,253}")  # a host name (letters of any script, digits, - _ .)
_BAD_URL_CHARS = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")  # controls, format marks, spaces


def base_url(text: str, flag: str = "--endpoint") -> str:
    """An http(s) URL of a server: its scheme, host, port and path, without a trailing /v1; no
    credentials in it (an API key belongs in an environment variable: a URL is written to the
    report), no query or fragment, no space or control character anywhere (an ESC, a CR LF)."""
    text = text.strip()
    bad = next((i for i, c in enumerate(text) if unicodedata.category(c) in _BAD_URL_CHARS), None)
    if bad is not None:
        raise ConfigError(f"{flag}: a URL holds no spaces or control characters; this one has {ascii(text[bad])} at "
                          f"character {bad + 1}")
    try:
        u = urllib.parse.urlsplit(text)
        port = u.port
    except ValueError as exc:
        raise ConfigError(f"{flag}: not a URL ({terminal_safe(redact(str(exc)), 120)})") from None
    if u.username is not None or u.password is not None:
        raise ConfigError(f"{flag}: credentials in the URL would be written to the report; name an environment "
                          "variable holding the key with --api-key-env")
    if u.scheme not in ("http", "https") or not u.hostname or not _host_ok(u.hostname):
        raise ConfigError(f"{flag}: expected http://HOST[:PORT][/PATH], got {terminal_safe(text, 80)!r}")
    if u.query or u.fragment or "?" in text or "#" in text:
        raise ConfigError(f"{flag}: the base URL takes no query or fragment")
    path = u.path.rstrip("/")
    path = path[:-3] if path.endswith("/v1") else path
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return f"{u.scheme}://{host}{f':{port}' if port else ''}{path}"


def _host_ok(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST.fullmatch(host)) and ".." not in host


def bearer_token(value: str, name: str) -> str:
    """The API key of environment variable `name`, as a bearer token may be (RFC 6750: letters, digits,
    -._~+/ and a trailing =); ConfigError otherwise, never quoting it (a trailing newline or CR LF
    from a file is the usual fault)."""
    if _TOKEN.fullmatch(value):
        return value
    ends = " (it ends with a newline or a space: strip it)" if value != value.rstrip() else ""
    raise ConfigError(f"--api-key-env {name}: its value is not a bearer token (RFC 6750: letters, digits, -._~+/ then "
                      f"=, at most 8192){ends}; the value is not shown")


def is_local(url: str) -> bool:
    """The endpoint is on this machine: a loopback address or localhost."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def probe(url: str, key: str | None = None, timeout_s: float | None = None) -> dict:
    """What the server at `url` says of itself: its models (/v1/models), their owner, its Server
    header. All of it within `timeout_s` (PROBE_S), no redirect followed; ConfigError naming
    --endpoint when nothing OpenAI-compatible answers, or its listing is not one."""
    limit = timeout_s or PROBE_S
    status, server, location, raw = _fetch(url, key, limit)
    if status in (301, 302, 303, 307, 308):
        raise ConfigError(f"--endpoint {url}: GET /v1/models answered {status}, a redirect to {_origin(location)}: "
                          "not followed (the API key must not go to a host not named); give --endpoint the URL of "
                          "the server itself")
    if status != 200:
        hint = " (a key is needed: --api-key-env VAR)" if status in (401, 403) else ""
        raise ConfigError(f"--endpoint {url}: GET /v1/models answered {status}{hint}")
    if len(raw) > MAX_LISTING:
        raise ConfigError(f"--endpoint {url}: GET /v1/models answered more than {MAX_LISTING >> 20} MiB: not a list of "
                          "models")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON (or not UTF-8), or nested deeper than a parser goes
        raise ConfigError(f"--endpoint {url}: GET /v1/models answered something other than JSON: no "
                          "OpenAI-compatible server answers there") from None
    return _listing(data, url, server)


def _fetch(url: str, key: str | None, limit: float) -> tuple[int, str | None, str | None, bytes]:
    """(status, Server, Location, body up to MAX_LISTING + 1 bytes) of GET url/v1/models, within `limit`
    seconds in all: aiohttp's `ClientTimeout.total` covers connection, send and reading the body (aiohttp
    3.14 docs, "Timeouts"), asyncio.wait_for around it; urllib's timeout bounded each read only."""
    import aiohttp

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(_get(url + "/v1/models", key, limit), limit + 1.0))
    except TimeoutError:  # asyncio's and aiohttp's (both are TimeoutError in Python 3.11)
        raise ConfigError(f"--endpoint {url}: GET /v1/models was not answered in full within {limit:g} s (a "
                          "server that is stuck, stopped, or sends its answer a byte at a time)") from None
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        why = terminal_safe(redact(f"{type(exc).__name__}: {exc}", key), 200)
        raise ConfigError(f"--endpoint {url}: no OpenAI-compatible server answers there ({why})") from None
    finally:
        loop.close()


async def _get(target: str, key: str | None, limit: float):
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as session:
        async with session.get(target, headers=auth(key), allow_redirects=False) as resp:
            chunks, size = [], 0
            async for chunk in resp.content.iter_any():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_LISTING:
                    break
            return resp.status, resp.headers.get("Server"), resp.headers.get("Location"), b"".join(chunks)


def auth(key: str | None) -> dict:
    """The headers that carry the key, where there is one."""
    return {"Authorization": f"Bearer {key}"} if key else {}


def _origin(location: str | None) -> str:
    """Where a redirect points, as scheme://host:port only (its path or query may carry a token)."""
    try:
        u = urllib.parse.urlsplit(location or "")
        shown = f"{u.scheme}://{u.hostname}{f':{u.port}' if u.port else ''}" if u.hostname else "a path of its own"
    except ValueError:
        shown = "a place that is not a URL"
    return terminal_safe(shown, 120)


def _listing(data, url: str, server: str | None) -> dict:
    """The models of an OpenAI model list (`{"data": [{"id": ...}, ...]}`), each id a name."""
    cards = data.get("data") if isinstance(data, dict) else None
    if not isinstance(cards, list) or not cards:
        raise ConfigError(f"--endpoint {url}: GET /v1/models lists no model (an OpenAI model list is "
                          '{"data": [{"id": NAME, ...}, ...]})')
    models = [_model_id(card, i, url) for i, card in enumerate(cards[:MAX_MODELS])]
    length = cards[0].get("max_model_len")
    return {"models": models, "owner": _label(cards[0].get("owned_by")), "server": _label(server),
            "max_model_len": length if type(length) is int and 0 < length < 1 << 31 else None,
            "identity": {models[i]: ident for i, card in enumerate(cards[:MAX_MODELS])
                         if (ident := _identity(card)) is not None}}


IDENTITY_KEYS = {"model": str, "model_type": str, "parameters": int, "config_hash": str, "reply_vocab": int}


def _identity(card) -> dict | None:
    """The model identity bench serve tells of the model it serves (its card's `bench` entry: model,
    model_type, parameters, config_hash, reply_vocab, as bench's own reports name them), where it is one: a
    result over HTTP then compares with bench's engine on the same model. None from any other server (and
    from a bench serve older than reply_vocab: its replies were drawn from another vocabulary)."""
    told = card.get("bench") if isinstance(card, dict) else None
    if not isinstance(told, dict) or set(told) != set(IDENTITY_KEYS):
        return None
    for k, kind in IDENTITY_KEYS.items():
        v = told[k]
        if not (v is None or type(v) is kind and (kind is int and 0 < v < 1 << 53 or kind is str and _label(v) == v)):
            return None
    return dict(told)


def _model_id(card, i: int, url: str) -> str:
    name = card.get("id") if isinstance(card, dict) else None
    if isinstance(name, str) and 0 < len(name) <= 256 and name.isprintable() and name.strip() == name:
        return name
    raise ConfigError(f"--endpoint {url}: GET /v1/models: entry {i + 1} has no model id that is a name (a string of "
                      "1 to 256 printable characters): not an OpenAI model list")


def _label(value) -> str | None:
    """A name the server gives itself, where it is printable text (at most 80 characters)."""
    return clip(value, 80, "…") if isinstance(value, str) and value.isprintable() and value.strip() else None
