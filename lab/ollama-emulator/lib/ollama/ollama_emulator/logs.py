"""Server log lines shaped like Ollama's: slog text records and Gin access lines."""

import datetime
import json
import logging
import sys


def format_go_duration(seconds: float) -> str:
    """Format a duration like Go's time.Duration String (e.g. "1.5ms", "2.1s")."""
    if seconds >= 1:
        return f"{seconds:.6g}s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.6g}ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.6g}µs"
    return f"{seconds * 1e9:.0f}ns"


def format_go_time(epoch_seconds: float) -> str:
    """Format a time like Go's RFC 3339 JSON encoding, in the local time zone."""
    moment = datetime.datetime.fromtimestamp(epoch_seconds).astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")

    fraction = f"{moment.microsecond:06d}".rstrip("0")
    if fraction:
        text += "." + fraction

    offset = moment.utcoffset() or datetime.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


class SlogFormatter(logging.Formatter):
    """Format records as Go slog text: time=... level=... source=... msg=..."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created).astimezone()
        timestamp = moment.isoformat(timespec="milliseconds")
        level = "WARN" if record.levelname == "WARNING" else record.levelname

        message = record.getMessage()
        if not message or any(character in message for character in ' "='):
            message = json.dumps(message, ensure_ascii=False)

        line = (
            f"time={timestamp} level={level} "
            f"source={record.module}.py:{record.lineno} msg={message}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging() -> logging.Logger:
    """Send server records and access lines to stderr, where journald collects them."""
    logger = logging.getLogger("ollama_emulator")
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SlogFormatter())
    logger.handlers[:] = [handler]
    logger.propagate = False

    access = logging.getLogger("ollama_emulator.access")
    access_handler = logging.StreamHandler(sys.stderr)
    access_handler.setFormatter(logging.Formatter("%(message)s"))
    access.handlers[:] = [access_handler]
    access.propagate = False
    return logger


def format_access_line(
    status: int, seconds: float, client: str, method: str, path: str
) -> str:
    """Format one request like Gin's default logger, which Ollama uses."""
    now = datetime.datetime.now().strftime("%Y/%m/%d - %H:%M:%S")
    return (
        f"[GIN] {now} | {status:3d} | {format_go_duration(seconds):>13} | "
        f'{client:>15} | {method:<7} "{path}"'
    )
