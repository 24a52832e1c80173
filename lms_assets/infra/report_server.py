"""The outputs folder (the study report and its charts), served read-only over HTTP beside the Dagster UI.

A reviewer follows a link from the UI to the file a run wrote; the links start with ``LMS_REPORT_URL``, which
``make run`` (``lms_assets.infra.launcher``) and the team deployment (``lms_assets.infra.deploy``) point at this server.

Only regular files inside the folder are served, to GET and HEAD: a folder (no listing, no index page), a
missing file and a path that leads out of the folder (``..``, or a symbolic link to elsewhere) are 404, and
the other HTTP methods are 405 (a method HTTP does not define, 501). A folder that does not exist yet (before the first run) is served as empty. Standard
library only: the launcher that runs it in a thread stays free of Dagster's imports.

    .venv/bin/python -m lms_assets.infra.report_server --host 127.0.0.1 --port 3001 --directory outputs
"""

from __future__ import annotations

import argparse
import socket
import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO


class ReportHandler(SimpleHTTPRequestHandler):
    """GET and HEAD of the regular files under ``directory``, symbolic links resolved; nothing else."""

    def send_head(self) -> BinaryIO | None:
        root = Path(self.directory).resolve()
        # translate_path already drops ".." segments; resolving also catches a symbolic link that points out.
        target = Path(self.translate_path(self.path)).resolve()
        if not (target.is_relative_to(root) and target.is_file()):
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        return super().send_head()

    def end_headers(self) -> None:
        # Every run rewrites the report in place: a browser must ask again rather than show a cached, older one.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def _refuse_method(self) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        # The request's body, if any, is never read: the connection cannot carry another request.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a line per request, 404s included, would bury Dagster's own log on the same terminal."""


class ReportServer(ThreadingHTTPServer):
    """:class:`ReportHandler` over ``directory`` on ``host:port`` (port 0: any free port), IPv4 or IPv6 as ``host`` is."""

    def __init__(self, host: str, port: int, directory: Path):
        self.address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        super().__init__((host, port), partial(ReportHandler, directory=str(directory)))

    @property
    def url(self) -> str:
        """Where the server answers, as a browser writes it."""
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that drops the connection mid-file (a cancelled download, a page closed) is not a server error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _folder(text: str) -> Path:
    # An empty value (a systemd unit's ${LMS_OUTPUT_DIR} when the variable is unset) would mean the working
    # directory: the whole checkout.
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty (is LMS_OUTPUT_DIR set?)")
    return Path(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lms_assets.infra.report_server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="where to listen (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3001, help="the port (default 3001)")
    parser.add_argument("--directory", type=_folder, required=True, help="the outputs folder (LMS_OUTPUT_DIR)")
    args = parser.parse_args(argv)
    try:
        server = ReportServer(args.host, args.port, args.directory)
    except OSError as error:
        # One line (the port is taken, the host is unknown), not a traceback on every restart by a supervisor.
        print(f"lms_assets.infra.report_server: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    with server:
        print(f"lms_assets.infra.report_server: serving {args.directory.resolve()} on {server.url}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
