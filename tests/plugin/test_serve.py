"""`faultbed serve`: runs listed newest first with their verdict's color; only the store is served."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import threading
import urllib.request

import pytest

from faultbed.commands.serve import RunBrowser, render_listing, resolve_store_path, summarize_runs
from tests.e2e.synthetic_runs import make_run


@pytest.fixture
def store_dir(tmp_path):
    root = tmp_path / "store"
    make_run(str(root), "20250101T000000Z", valid=True)
    make_run(str(root), "20250101T000100Z", valid=False, linearizability_html=True)
    make_run(str(root), "20250101T000200Z", valid="unknown")
    make_run(str(root), "20250101T000300Z", valid=None, system="broker", workload="queue")
    make_run(str(root), "20250101T000100Z-2", valid=True)
    make_run(str(root), "20250101T000100Z-10", valid=True)
    os.symlink("raftkv-register/20250101T000000Z", root / "latest")
    return str(root)


@pytest.fixture
def server(store_dir):
    from faultbed.cluster.ports import PortReservation

    with PortReservation() as ports:
        browser = RunBrowser(store_dir, ports.take()[0])
        thread = threading.Thread(target=browser.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        yield browser
        browser.shutdown()
        browser.server_close()
        thread.join(5)


def get(server, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    connection.request(method, path)  # sent as is: no client-side normalization of ".."
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), body


def test_runs_are_listed_newest_first_including_same_second_suffixes(store_dir):
    paths = [run.path for run in summarize_runs(store_dir)]
    assert paths == ["broker-queue/20250101T000300Z", "raftkv-register/20250101T000200Z",
                     "raftkv-register/20250101T000100Z-10", "raftkv-register/20250101T000100Z-2",
                     "raftkv-register/20250101T000100Z", "raftkv-register/20250101T000000Z"]


def test_listing_colors_valid_green_invalid_red_unknown_and_unfinished_yellow(store_dir):
    page = render_listing(store_dir)
    rows = re.findall(r'<tr class="run (\w+)" data-verdict="\w+"><td><a href="([^"]+)">', page)
    assert [(verdict, link.split("/")[-2]) for verdict, link in rows] == [
        ("unknown", "20250101T000300Z"), ("unknown", "20250101T000200Z"), ("valid", "20250101T000100Z-10"),
        ("valid", "20250101T000100Z-2"), ("invalid", "20250101T000100Z"), ("valid", "20250101T000000Z")]
    assert all(link.endswith("/report.html") for _, link in rows)
    assert "tr.valid { background: #dff3e3; }" in page and "tr.invalid { background: #f9d6d5; }" in page
    assert "tr.unknown { background: #fff3c4; }" in page
    assert ">no verdict<" in page and ">INVALID<" in page


def test_index_and_report_are_served_and_a_missing_report_is_written_on_demand(server, store_dir):
    status, headers, body = get(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"20250101T000100Z" in body
    report = os.path.join(store_dir, "raftkv-register", "20250101T000100Z", "report.html")
    assert not os.path.exists(report)
    status, headers, body = get(server, "/runs/raftkv-register/20250101T000100Z/report.html")
    assert status == 200 and b'data-valid="invalid"' in body
    assert os.path.exists(report)


def test_run_directory_redirects_to_its_report_and_latest_link_works(server):
    status, headers, _ = get(server, "/runs/latest/")
    assert status == 302 and headers["Location"] == "/runs/latest/report.html"
    status, _, body = get(server, "/runs/latest/report.html")
    assert status == 200 and b'data-valid="valid"' in body


def test_logs_and_histories_are_served_as_text_and_head_sends_no_body(server):
    status, headers, body = get(server, "/runs/raftkv-register/20250101T000000Z/nodes/n1.log")
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.endswith(b"n1 line 59: raft term 5\n")
    status, headers, body = get(server, "/runs/raftkv-register/20250101T000000Z/history.jsonl", method="HEAD")
    assert status == 200 and int(headers["Content-Length"]) > 0 and body == b""


@pytest.mark.parametrize("path", ["/runs/../../../etc/passwd", "/runs/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                                  "/runs/..%2f..%2f..%2fetc/passwd", "/runs//etc/passwd",
                                  "/runs/raftkv-register/..%5c..%5cetc/passwd", "/etc/passwd"])
def test_nothing_outside_the_store_is_served(server, path):
    status, _, body = get(server, path)
    assert status in (403, 404)
    assert b"root:" not in body


def test_a_symlink_out_of_the_store_is_refused(server, store_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, os.path.join(store_dir, "raftkv-register", "20250101T000000Z", "leak.txt"))
    status, _, body = get(server, "/runs/raftkv-register/20250101T000000Z/leak.txt")
    assert status == 403 and b"top secret" not in body


def test_resolve_store_path_stays_inside(store_dir):
    root = os.path.realpath(store_dir)
    assert resolve_store_path(store_dir, "raftkv-register/x/../y") == os.path.join(root, "raftkv-register", "y")
    assert resolve_store_path(store_dir, "../../etc/passwd") == os.path.join(root, "etc", "passwd")
    assert resolve_store_path(store_dir, "a%00b") is None


def test_serve_command_listens_on_loopback_only_and_picks_a_port_below_32768(store_dir):
    proc = subprocess.Popen([sys.executable, "-m", "faultbed", "serve", "--store", store_dir, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        port = int(match.group(1))
        assert port < 32768
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert b"newest first" in response.read()
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True,
                                   timeout=10).stdout
        local_addresses = [line.split()[3] for line in listening.splitlines()]
        assert local_addresses == [f"127.0.0.1:{port}"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_command_refuses_a_missing_store_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "faultbed", "serve", "--store", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 3
    assert "no such store directory" in done.stderr and "Traceback" not in done.stderr


def test_listing_of_an_empty_store_says_so(tmp_path):
    assert "No runs in this store yet." in render_listing(str(tmp_path))
