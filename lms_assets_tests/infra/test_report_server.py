"""The outputs folder's read-only server (``lms_assets.infra.report_server``) and what the launcher hands it and Dagster.

Each test serves a private folder in-process on a free port, and sends raw requests with ``http.client`` so that a
path such as ``/../x`` reaches the server as written.
"""

import http.client
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lms_assets.defs.resources import locations
from lms_assets.infra import deploy, launcher, report_server
from lms_assets.infra.report_server import ReportServer
from lms_assets_tests.dagster_process import REPO
from lms_assets_tests.graphql_client import free_port


@pytest.fixture
def serve() -> Iterator:
    """Start a server over a folder; every server started is shut down after the test."""
    servers = []

    def start(folder: Path) -> ReportServer:
        server = ReportServer("127.0.0.1", 0, folder)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def request(server: ReportServer, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one request, the path sent exactly as given."""
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """An outputs folder with a report, a chart in a subfolder, and a file beside the folder that must stay out of reach."""
    folder = tmp_path / "outputs"
    (folder / "charts").mkdir(parents=True)
    (folder / "report.html").write_text("<h1>report</h1>")
    (folder / "charts" / "km.svg").write_text("<svg/>")
    (folder / "charts" / "index.html").write_text("an index page is not served either")
    (tmp_path / "secret.txt").write_text("outside the outputs folder")
    return folder


def test_a_file_in_the_folder_is_served_and_never_cached_stale(serve, outputs):
    server = serve(outputs)
    status, headers, body = request(server, "GET", "/report.html")
    assert (status, body) == (200, b"<h1>report</h1>")
    assert headers["Content-type"] == "text/html"
    assert headers["Cache-Control"] == "no-cache"
    status, headers, body = request(server, "GET", "/charts/km.svg")
    assert (status, headers["Content-type"], body) == (200, "image/svg+xml", b"<svg/>")
    status, headers, body = request(server, "HEAD", "/report.html")
    assert (status, headers["Content-Length"], body) == (200, "15", b"")


@pytest.mark.parametrize("path", ["/", "/charts", "/charts/", "/charts/index.html/", "/missing.html"])
def test_folders_are_not_listed_and_what_is_not_a_file_is_404(serve, outputs, path):
    status, _, body = request(serve(outputs), "GET", path)
    assert status == 404
    assert b"km.svg" not in body


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/charts/../../secret.txt", "/..%2fsecret.txt", "/link.txt"])
def test_no_path_leads_out_of_the_folder(serve, outputs, path):
    (outputs / "link.txt").symlink_to(outputs.parent / "secret.txt")
    status, _, body = request(serve(outputs), "GET", path)
    assert status == 404
    assert b"outside" not in body


def test_a_link_that_stays_inside_the_folder_is_followed(serve, outputs):
    (outputs / "latest.svg").symlink_to(outputs / "charts" / "km.svg")
    assert request(serve(outputs), "GET", "/latest.svg")[::2] == (200, b"<svg/>")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head_are_allowed(serve, outputs, method):
    status, headers, _ = request(serve(outputs), method, "/report.html")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert (outputs / "report.html").read_text() == "<h1>report</h1>"


def test_a_folder_that_does_not_exist_yet_is_served_once_it_does(serve, tmp_path):
    folder = tmp_path / "outputs"
    server = serve(folder)
    assert request(server, "GET", "/report.html")[0] == 404
    folder.mkdir()
    (folder / "report.html").write_text("first run")
    assert request(server, "GET", "/report.html")[::2] == (200, b"first run")


def test_requests_leave_no_lines_on_the_terminal(serve, outputs, capfd):
    server = serve(outputs)
    for path in ("/report.html", "/", "/missing"):
        request(server, "GET", path)
    request(server, "POST", "/report.html")
    assert capfd.readouterr() == ("", "")


def test_the_url_is_the_address_it_listens_on(serve, outputs):
    server = serve(outputs)
    assert server.url == f"http://127.0.0.1:{server.server_address[1]}"


def test_the_command_line_refuses_an_empty_folder_rather_than_serve_the_working_directory(capsys):
    with pytest.raises(SystemExit) as exit_:
        report_server.main(["--port", "0", "--directory", ""])
    assert exit_.value.code == 2
    assert "--directory: is empty (is LMS_OUTPUT_DIR set?)" in capsys.readouterr().err


def test_the_team_deployment_supervises_the_server_as_a_third_service(tmp_path):
    (tmp_path / "report.html").write_text("team report")
    port = free_port()
    (service,) = [s for s in deploy.services("127.0.0.1", 3000, port, tmp_path, tmp_path / "workspace.yaml") if s.name == "lms-report-server"]
    service.start()
    try:
        # Up once it accepts a connection; the process has a generous minute to import and bind.
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert service.process is not None and service.process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/report.html")
        assert connection.getresponse().read() == b"team report"
        connection.close()
    finally:
        service.stop()
    assert service.process is not None and service.process.returncode is not None


# --- what the launcher gives the server and `dagster dev` ---------------------------------------


def test_the_launcher_serves_the_outputs_folder_the_definitions_write_to(tmp_path):
    """The launcher reads LMS_OUTPUT_DIR itself (it does not import Dagster); it must agree with locations()."""
    for env in ({}, {"LMS_OUTPUT_DIR": ""}, {"LMS_OUTPUT_DIR": str(tmp_path / "elsewhere")}):
        assert launcher.outputs_folder(env) == locations(env)["outputs"]


@pytest.mark.parametrize(
    ("args", "report_port", "host", "dev_args"),
    [
        (["--report-port", "3001", "-h", "127.0.0.1", "-p", "3000"], 3001, "127.0.0.1", ["-h", "127.0.0.1", "-p", "3000"]),
        (["-p", "3000", "--host=10.1.2.3", "--report-port=4001"], 4001, "10.1.2.3", ["-p", "3000", "--host=10.1.2.3"]),
        (["-m", "lms_assets.definitions", "-p", "3000"], None, "127.0.0.1", ["-m", "lms_assets.definitions", "-p", "3000"]),
    ],
)
def test_the_launcher_takes_its_own_option_and_passes_the_rest_to_dagster_dev(args, report_port, host, dev_args):
    assert launcher.split_args(args) == (report_port, host, dev_args)


def test_dagster_dev_is_told_the_report_url_unless_the_environment_names_one():
    assert launcher.dagster_dev_env({}, "http://127.0.0.1:3001")["LMS_REPORT_URL"] == "http://127.0.0.1:3001"
    behind_proxy = {"LMS_REPORT_URL": "https://lms.example.org/report"}
    assert launcher.dagster_dev_env(behind_proxy, "http://127.0.0.1:3001")["LMS_REPORT_URL"] == "https://lms.example.org/report"
    assert "LMS_REPORT_URL" not in launcher.dagster_dev_env({}, None)


def test_the_launcher_refuses_a_report_port_in_use_before_starting_dagster(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "lms_assets.infra.launcher", "--report-port", str(port), "-h", "127.0.0.1", "-p", "1"],
            cwd=REPO,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LMS_OUTPUT_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"lms_assets.infra.launcher: cannot serve {tmp_path} on 127.0.0.1:{port}: Address already in use\n"
