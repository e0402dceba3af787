"""The shipped proxy (`deploy/nginx.conf`) in front of the rehearsal's workers: Debian's
nginx as a private instance (`-p` folder, its own port, in the foreground)."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from service.infra import processes

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX = "/usr/sbin/nginx"

# A worker a core, as Debian's own nginx.conf has it: each holds its share of the
# crowd's keep-alive connections, within the open files a process may have.
_MAIN = """\
worker_processes auto;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
worker_rlimit_nofile 65536;
events {{ worker_connections 32768; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
"""


def site_config(shipped: str, upstream: str, port: int) -> str:
    """The shipped server block with each upstream's servers replaced by one, `upstream`
    (host:port) with that upstream's options (its `max_conns`), and its listen lines by
    one loopback port; everything else as shipped."""
    servers = re.compile(r"^(\s*)server\s+\S+:\d+(\s[^;]*)?;[ \t]*\n?", re.MULTILINE)

    def one_server(block: re.Match[str]) -> str:
        first = servers.search(block.group(2))
        if first is None:
            raise ValueError(f"the shipped nginx.conf's upstream {block.group(1)} names no server")
        indent, options = first.group(1), first.group(2) or ""
        body = block.group(2)
        body = body[: first.start()] + "\0" + servers.sub("", body[first.end() :])
        body = body.replace("\0", f"{indent}server {upstream}{options};\n")
        return f"upstream {block.group(1)} {{\n{body}}}"

    out, blocks = re.subn(
        r"upstream\s+(\w+)\s*\{\n?(.*?)^\}", one_server, shipped, flags=re.MULTILINE | re.DOTALL
    )
    if not blocks:
        raise ValueError("the shipped nginx.conf names no upstream server")
    out = re.sub(r"^\s*listen\s+\[::\]:80;\s*$", "", out, flags=re.MULTILINE)
    out, n = re.subn(
        r"^(\s*)listen\s+80;", rf"\g<1>listen 127.0.0.1:{port};", out, flags=re.MULTILINE
    )
    if n != 1:
        raise ValueError("the shipped nginx.conf does not listen on port 80 once")
    return out


def available() -> str | None:
    """Why nginx cannot be used here (None: it can)."""
    if not (Path(NGINX).exists() or shutil.which("nginx")):
        return "no nginx (apt-get install nginx)"
    if not SHIPPED.exists():
        return f"no {SHIPPED} (run from a source checkout)"
    return None


@contextlib.contextmanager
def proxy(upstream: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """nginx on 127.0.0.1:`port` in front of `upstream`; stopped on exit."""
    binary = NGINX if Path(NGINX).exists() else str(shutil.which("nginx"))
    with tempfile.TemporaryDirectory(prefix="fd-nginx-") as work:
        folder = Path(work)
        folder.chmod(0o755)  # nginx's workers (another user when run as root) write temp files here
        (folder / "site.conf").write_text(site_config(SHIPPED.read_text(), upstream, port))
        (folder / "nginx.conf").write_text(_MAIN.format(folder=folder))
        with (folder / "stderr").open("wb") as log:
            proc = subprocess.Popen(
                [binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            yield proc
        finally:
            processes.stop(proc)
