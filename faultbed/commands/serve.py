"""`faultbed serve`: browse stored runs and their reports, on 127.0.0.1 only.

`/` lists the runs of the store, newest first (valid green, invalid red, no
verdict or unknown yellow), with the host each ran on (a store merged from
several hosts by `faultbed store merge` holds them all); `/runs/<group>/<stamp>/...` serves the files of the
store and nothing outside it. A report that is missing or older than its
results.json is (re)written when it is asked for.
"""

from __future__ import annotations

import argparse
import html
import logging
import mimetypes
import os
import posixpath
import shutil
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from faultbed import store
from faultbed.errors import FaultbedError
from faultbed.run_files import read_results, read_spec

HELP = "browse stored runs and their reports in a browser (listens on 127.0.0.1 only)"
HOST = "127.0.0.1"
DEFAULT_PORT = 8765
RUNS_PREFIX = "/runs/"
TEXT_TYPES = {".log": "text/plain", ".jsonl": "text/plain", ".txt": "text/plain", ".json": "application/json",
              ".html": "text/html", ".edn": "text/plain"}

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default="store", help="results root to browse (default store)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port on 127.0.0.1, 0-65535 (default {DEFAULT_PORT}; 0 = pick a free one below 32768)")


def execute(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise FaultbedError(f"--port must be 0-65535, not {args.port}")
    if not os.path.isdir(args.store):
        raise FaultbedError(f"{args.store}: no such store directory")
    reservation = None
    port = args.port
    if port == 0:
        from faultbed.cluster.ports import PortReservation

        reservation = PortReservation(HOST)
        port = reservation.take()[0]  # held while serving, so parallel runs never pick it
    try:
        _serve(args.store, port)
    finally:
        if reservation is not None:
            reservation.release()
    return 0


def _serve(store_root: str, port: int) -> None:
    try:
        server = RunBrowser(store_root, port)
    except OSError as exc:
        raise FaultbedError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from exc
    print(f"serving {os.path.abspath(store_root)} at http://{HOST}:{server.server_port}/ (Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@dataclass(frozen=True)
class RunSummary:
    """One row of the listing."""

    path: str          # relative to the store, with forward slashes
    verdict: str       # valid, invalid or unknown
    label: str
    host: str          # where it ran (origin.json); "" for runs from before it was recorded
    spec: dict[str, Any]
    counts: dict[str, int]


def summarize_runs(store_root: str) -> list[RunSummary]:
    """Every run of the store, newest first, with its verdict."""
    from faultbed.report import verdict_class

    rows = []
    for run_dir in store.list_runs(store_root):
        results = _or_none(read_results, run_dir) if os.path.exists(os.path.join(run_dir, store.RESULTS)) else None
        spec = _or_none(lambda path: read_spec(path).to_json(), run_dir) or {}
        valid = results.get("valid") if isinstance(results, dict) else None
        verdict = verdict_class(valid)
        label = {"valid": "valid", "invalid": "INVALID"}.get(verdict, "unknown" if results else "no verdict")
        counts = results.get("counts", {}) if isinstance(results, dict) else {}
        relative = os.path.relpath(run_dir, store_root).replace(os.sep, "/")
        host = str(store.read_origin(run_dir).get("host", ""))
        rows.append(RunSummary(relative, verdict, label, host, spec, counts))
    return rows


def _or_none(read: Callable[[str], Any], run_dir: str) -> Any:
    """What `read` makes of the run's file; None when it is malformed (the listing shows no verdict)."""
    try:
        return read(run_dir)
    except FaultbedError:
        return None


def resolve_store_path(store_root: str, url_path: str) -> str | None:
    """The file under `store_root` that `url_path` (after /runs/) names, or None if it leaves the store."""
    relative = urllib.parse.unquote(url_path)
    if "\x00" in relative or "\\" in relative:
        return None
    normal = posixpath.normpath("/" + relative).lstrip("/")
    root = os.path.realpath(store_root)
    target = os.path.realpath(os.path.join(root, *normal.split("/"))) if normal else root
    if os.path.commonpath([root, target]) != root:
        return None
    return target


def render_listing(store_root: str) -> str:
    """The index page: a table of runs, newest first, each linking to its report."""
    rows = []
    runs = summarize_runs(store_root)
    for run in runs:
        spec, counts = run.spec, run.counts
        link = f"{RUNS_PREFIX}{urllib.parse.quote(run.path)}/{store.REPORT_HTML}"
        ops = (f"{counts.get('ok', 0)} ok, {counts.get('fail', 0)} fail, {counts.get('info', 0)} info"
               if counts else "")
        rows.append(
            f'<tr class="run {run.verdict}" data-verdict="{run.verdict}">'
            f'<td><a href="{html.escape(link)}">{html.escape(run.path)}</a></td>'
            f'<td class="verdict">{html.escape(run.label)}</td>'
            f'<td class="host">{html.escape(run.host)}</td>'
            f'<td>{html.escape(str(spec.get("system", "?")))} / {html.escape(str(spec.get("workload", "?")))}</td>'
            f'<td>{html.escape(",".join(spec.get("nemesis") or []) or "none")}</td>'
            f'<td>{html.escape(ops)}</td><td>{html.escape(str(spec.get("seed", "")))}</td></tr>')
    body = ("<table><tr><th>run</th><th>verdict</th><th>host</th><th>system / workload</th><th>nemesis</th><th>ops</th>"
            f"<th>seed</th></tr>{''.join(rows)}</table>" if rows else "<p>No runs in this store yet.</p>")
    title = f"faultbed runs: {html.escape(os.path.abspath(store_root))}"
    hosts = len({run.host for run in runs if run.host})
    return LISTING_PAGE.format(title=title, count=len(rows), hosts=hosts, body=body)


class RunBrowser(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 over one store directory."""

    daemon_threads = True

    def __init__(self, store_root: str, port: int) -> None:
        self.store_root = store_root
        super().__init__((HOST, port), RunBrowserHandler)


class RunBrowserHandler(BaseHTTPRequestHandler):
    server: RunBrowser
    server_version = "faultbed-serve"

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _respond(self, send_body: bool) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send_bytes(render_listing(self.server.store_root).encode(), "text/html", send_body)
        elif path.startswith(RUNS_PREFIX):
            self._send_store_file(path[len(RUNS_PREFIX):], send_body)
        else:
            self.send_error(HTTPStatus.NOT_FOUND, "not found")

    def _send_store_file(self, url_path: str, send_body: bool) -> None:
        target = resolve_store_path(self.server.store_root, url_path)
        if target is None:
            self.send_error(HTTPStatus.FORBIDDEN, "outside the store")
            return
        if os.path.isdir(target) and os.path.isfile(os.path.join(target, store.SPEC)):
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", f"{RUNS_PREFIX}{url_path.rstrip('/')}/{store.REPORT_HTML}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if os.path.basename(target) == store.REPORT_HTML:
            self._refresh_report(os.path.dirname(target))
        if not os.path.isfile(target):
            self.send_error(HTTPStatus.NOT_FOUND, "no such file in the store")
            return
        self._send_file(target, send_body)

    def _refresh_report(self, run_dir: str) -> None:
        """Write the report when it is missing or older than the verdict."""
        from faultbed.report import write_report

        report = os.path.join(run_dir, store.REPORT_HTML)
        results = os.path.join(run_dir, store.RESULTS)
        stale = not os.path.exists(report) or (
            os.path.exists(results) and os.path.getmtime(results) > os.path.getmtime(report))
        if stale and os.path.isfile(os.path.join(run_dir, store.SPEC)):
            try:
                write_report(run_dir)
            except Exception:
                log.exception("cannot write the report of %s", run_dir)

    def _send_file(self, target: str, send_body: bool) -> None:
        extension = os.path.splitext(target)[1]
        content_type = TEXT_TYPES.get(extension) or mimetypes.guess_type(target)[0] or "application/octet-stream"
        try:
            fh = open(target, "rb")
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "cannot read")
            return
        with fh:
            size = os.fstat(fh.fileno()).st_size
            self._send_headers(content_type, size)
            if send_body:
                shutil.copyfileobj(fh, self.wfile)

    def _send_bytes(self, body: bytes, content_type: str, send_body: bool) -> None:
        self._send_headers(content_type, len(body))
        if send_body:
            self.wfile.write(body)

    def _send_headers(self, content_type: str, length: int) -> None:
        self.send_response(HTTPStatus.OK)
        if content_type.startswith("text/") or content_type == "application/json":
            content_type += "; charset=utf-8"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()


LISTING_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #ddd; padding: .3em .6em; text-align: left; }}
tr.valid {{ background: #dff3e3; }} tr.invalid {{ background: #f9d6d5; }} tr.unknown {{ background: #fff3c4; }}
tr.valid td.verdict {{ color: #1e7a32; font-weight: bold; }}
tr.invalid td.verdict {{ color: #b71c1c; font-weight: bold; }}
tr.unknown td.verdict {{ color: #8a6d00; font-weight: bold; }}
</style></head>
<body><h1>{title}</h1><p>{count} run(s) from {hosts} host(s), newest first.</p>
{body}
</body></html>
"""
