"""Filters that turn the ollama role's variables into drop-in settings.

Each filter raises AnsibleFilterError with the host, the value and the fix, so
the role's validation step stops a bad value before any host changes.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible.errors import AnsibleFilterError

# Characters that systemd or Ollama would not read as the user meant. systemd
# drops a whole Environment= line whose quoting it cannot parse ("Invalid
# environment assignment, ignoring"), and typographic quotes copied from a
# document end up inside the value instead of delimiting it.
_TYPOGRAPHIC_QUOTES = "\u201c\u201d\u201e\u2018\u2019\u201a\u00ab\u00bb"
_FORBIDDEN_IN_VALUES = '"\\\n\r' + _TYPOGRAPHIC_QUOTES


def _format_address(address: str) -> str:
    """Put brackets around an IPv6 address, as URLs and OLLAMA_HOST need."""
    return f"[{address}]" if ":" in address else address


def _split_host_port(text: str) -> tuple[str, str | None]:
    """Split HOST, HOST:PORT, :PORT, [IPv6] or [IPv6]:PORT into its parts.

    A bare IPv6 address without brackets is a host without a port.
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError("an opening [ has no closing ]")
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"unexpected text {rest!r} after the IPv6 address")
        return text[1:end], (rest[1:] if rest else None)

    if text.count(":") > 1:
        return text, None

    host, separator, port = text.partition(":")
    return host, (port if separator else None)


def ollama_listen(
    value: str, bind_address: str, port: int, host_name: str = ""
) -> dict[str, Any]:
    """Parse the role's ollama_host into the address and port the server binds.

    Accepts HOST, HOST:PORT, :PORT, http://HOST:PORT, [IPv6]:PORT and a bare IPv6
    address; an empty value means bind_address. A missing port means `port`
    (ollama_port), and a port that differs from it is rejected, because the
    firewall role and the consumers' endpoints read ollama_port. HOST must be an
    IP address. Returns address, port, the OLLAMA_HOST value and the local URL that
    the host itself uses to reach the server (loopback for 0.0.0.0 and ::).
    """
    prefix = f"{host_name}: " if host_name else ""
    text = str(value if value is not None else "")
    given = text or str(bind_address)

    def invalid(reason: str) -> AnsibleFilterError:
        return AnsibleFilterError(
            f"{prefix}ollama_host {given!r} is invalid: {reason}. Use an IP address "
            "with an optional port, such as 0.0.0.0, 10.0.0.5:11434, :11434, "
            "http://10.0.0.5:11434 or [::]:11434, typed with plain ASCII characters."
        )

    if any(character.isspace() for character in text) or any(
        character in _TYPOGRAPHIC_QUOTES + "\"'" for character in text
    ):
        raise invalid("it contains spaces or quotes")

    if not text:
        text = str(bind_address).strip()

    scheme, separator, rest = text.partition("://")
    if separator:
        if scheme != "http":
            raise invalid(f"the scheme {scheme!r} is not http")
        text = rest.rstrip("/")
        if "/" in text:
            raise invalid("a path is not allowed")

    try:
        host, port_text = _split_host_port(text)
    except ValueError as error:
        raise invalid(str(error)) from error

    if port_text is None or port_text == "":
        if port_text == "" and host:
            raise invalid("the port after the colon is missing")
        listen_port = int(port)
    else:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise invalid(f"the port {port_text!r} is not a number from 1 to 65535")
        listen_port = int(port_text)

    if listen_port != int(port):
        raise AnsibleFilterError(
            f"{prefix}ollama_host {given!r} sets port {listen_port}, but ollama_port "
            f"is {port}. The firewall and the consumers use ollama_port, so set "
            f"ollama_port: {listen_port} as well, or leave the port out of ollama_host."
        )

    # ":PORT" binds every interface, as in Ollama.
    address = host or "0.0.0.0"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError as error:
        raise invalid(f"{address!r} is not an IPv4 or IPv6 address") from error

    address = str(parsed)
    if parsed.is_unspecified:
        local = "::1" if parsed.version == 6 else "127.0.0.1"
    else:
        local = address

    return {
        "address": address,
        "port": listen_port,
        "value": f"{_format_address(address)}:{listen_port}",
        "local_url": f"http://{_format_address(local)}:{listen_port}",
    }


def ollama_environment_errors(environment: dict[str, Any]) -> list[str]:
    """List the NAME=value pairs that a systemd drop-in cannot carry unchanged.

    Names must be shell variable names. Values must not contain double quotes,
    backslashes, line breaks, typographic quotes, or leading or trailing spaces.
    """
    errors = []
    for name, value in sorted(environment.items()):
        text = str(value)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
            errors.append(f"{name!r} is not a valid variable name")
        elif isinstance(value, (dict, list)):
            errors.append(f"{name} is a {type(value).__name__}, not a string")
        elif any(character in _FORBIDDEN_IN_VALUES for character in text):
            errors.append(f"{name}={text!r} contains a quote, backslash or line break")
        elif text != text.strip():
            errors.append(f"{name}={text!r} starts or ends with a space")
    return errors


def ollama_systemd_escape(value: Any) -> str:
    """Escape % for a systemd Environment= line, where %h and the like expand."""
    return str(value).replace("%", "%%")


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "ollama_listen": ollama_listen,
            "ollama_environment_errors": ollama_environment_errors,
            "ollama_systemd_escape": ollama_systemd_escape,
        }
