"""Log lines, and the request id that ties a request's lines and answer together.

With `FAIRDROP_LOG_FORMAT=json` every record is one JSON object a line (`JsonLines`),
and each request (`request`) and each background job run (`job`) writes one. The
request id is in `REQUEST_ID` while the request is handled (a context variable: the
handler, its problem details and its log lines all see it).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fairdrop_request_id", default=None
)

_ACCESS = logging.getLogger("fairdrop.request")
_JOBS = logging.getLogger("fairdrop.job")
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

json_lines = False
"""Whether this process writes JSON lines (set by `configure`)."""


class JsonLines(logging.Formatter):
    """A record as one JSON object: time, level, logger, message, its `extra` fields,
    the request id when there is one, and the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out |= {k: v for k, v in vars(record).items() if k not in _RESERVED}
        if "request_id" not in out and (rid := REQUEST_ID.get()) is not None:
            out["request_id"] = rid
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def configure(log_format: str) -> None:
    """Send this process's log records to stderr as `log_format` says (`text`: left to
    the server's own set-up; `json`: JSON lines, the request and job lines on)."""
    global json_lines
    if log_format != "json" or json_lines:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    json_lines = True


def request(**fields: Any) -> None:
    """One request answered: method, route, status, duration_ms, request_id, client."""
    if json_lines:
        _ACCESS.info("request", extra=fields)


def job(name: str, seconds: float, error: BaseException | None = None) -> None:
    """One background job run: its name, duration_ms, and outcome."""
    if json_lines:
        fields = {"job": name, "duration_ms": round(seconds * 1000, 2)}
        fields["outcome"] = "ok" if error is None else "error"
        if error is not None:
            fields["error"] = repr(error)  # its traceback: the job's own error line
        _JOBS.info("job", extra=fields)
