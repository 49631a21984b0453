"""Downloads on copies of the official MNIST files, never the network: mirrors tried in order
(one missing, one serving a damaged file), every file md5-checked, a `.part` resumed from the
next mirror, and, on a loopback HTTP server, the HTTP Range requests a resume makes."""

import http.server
import shutil
import threading

import pytest
from click.testing import CliRunner

from data_prep import cli as prep_cli
from data_prep.checksums import OFFICIAL_MD5
from data_prep.download import MNIST_FILES, fetch, fetch_cifar, fetch_mnist
from lcengine.cli import main
from lcengine.data import DataError

SMALL = "t10k-labels-idx1-ubyte.gz"       # 4,542 bytes
LARGE = "t10k-images-idx3-ubyte.gz"       # 1,648,877 bytes


def folder_url(path) -> str:
    return path.as_uri() + "/"


@pytest.fixture
def mirror(shared_data, tmp_path):
    """A good copy of the four files, and one where the small labels file is damaged."""
    good, damaged = tmp_path / "good", tmp_path / "damaged"
    shutil.copytree(shared_data / "mnist", good)
    shutil.copytree(good, damaged)
    (damaged / SMALL).write_bytes(b"\x1f\x8b not the labels")
    return good, damaged


def test_prep_download_falls_through_a_missing_first_mirror(mirror, tmp_path, monkeypatch):
    good, _ = mirror
    monkeypatch.setenv("LCENGINE_DATA", str(tmp_path / "home"))
    monkeypatch.setattr(prep_cli, "MNIST_MIRRORS", (folder_url(tmp_path / "absent"),
                                                    folder_url(good)))
    result = CliRunner().invoke(main, ["prep", "mnist", "--download", "--limit", "3"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    downloads = tmp_path / "home" / "mnist" / "downloads"
    for name in MNIST_FILES:
        assert (downloads / name).read_bytes() == (good / name).read_bytes(), name
    assert sorted(p.name for p in downloads.iterdir()) == sorted(MNIST_FILES)   # no .part left
    assert "  mnist: mnist (raw), train 30, test 30" in CliRunner().invoke(
        main, ["info"]).output.splitlines()


def test_a_damaged_copy_is_caught_by_md5_and_the_next_mirror_serves(mirror, tmp_path):
    good, damaged = mirror
    into = fetch_mnist([folder_url(damaged), folder_url(good)], tmp_path / "downloads")
    for name in MNIST_FILES:
        assert (into / name).read_bytes() == (good / name).read_bytes(), name
    assert not list(into.glob("*.part"))


def test_when_every_mirror_fails_one_line_names_each_and_why(mirror, tmp_path):
    _, damaged = mirror
    dest = tmp_path / "downloads" / SMALL
    urls = [folder_url(tmp_path / "absent") + SMALL, folder_url(damaged) + SMALL]
    with pytest.raises(DataError) as caught:
        fetch(urls, dest, OFFICIAL_MD5[SMALL])
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{dest}: every mirror failed: ")
    assert f"{urls[0]} (" in message and "No such file" in message
    assert f"{urls[1]} (md5 " in message and f"expected {OFFICIAL_MD5[SMALL]}" in message
    assert not dest.exists() and not dest.with_name(SMALL + ".part").exists()


def test_a_part_left_by_one_mirror_is_finished_from_the_next(mirror, tmp_path):
    good, _ = mirror
    dest = tmp_path / "downloads" / LARGE
    dest.parent.mkdir()
    whole = (good / LARGE).read_bytes()
    dest.with_name(LARGE + ".part").write_bytes(whole[:600_000])
    fetch([folder_url(tmp_path / "absent") + LARGE, folder_url(good) + LARGE], dest,
          OFFICIAL_MD5[LARGE])
    assert dest.read_bytes() == whole


def test_a_part_longer_than_the_file_is_deleted_and_fetched_again(mirror, tmp_path):
    good, _ = mirror
    dest = tmp_path / "downloads" / SMALL
    dest.parent.mkdir()
    whole = (good / SMALL).read_bytes()
    dest.with_name(SMALL + ".part").write_bytes(whole + b"trailing junk")
    url = folder_url(good) + SMALL
    with pytest.raises(DataError, match="shorter than the part already downloaded"):
        fetch([url], dest, OFFICIAL_MD5[SMALL])
    fetch([url], dest, OFFICIAL_MD5[SMALL])                    # the rerun starts afresh
    assert dest.read_bytes() == whole


def test_cifar_archive_is_md5_checked_against_the_official_value(tmp_path):
    fake = tmp_path / "site" / "cifar-10-python.tar.gz"
    fake.parent.mkdir()
    fake.write_bytes(b"not the archive")
    with pytest.raises(DataError, match=f"expected {OFFICIAL_MD5['cifar-10-python.tar.gz']}"):
        fetch_cifar(fake.as_uri(), tmp_path / "downloads")


class RangeServer(http.server.BaseHTTPRequestHandler):
    """Serves `server.files` by name with HTTP Range (206, or 416 past the end); records the
    Range header of each request and the bytes it sent."""

    def do_GET(self):
        body = self.server.files[self.path.lstrip("/")]
        wanted = self.headers.get("Range")
        start = int(wanted.removeprefix("bytes=").rstrip("-")) if wanted else 0
        self.server.log.append((wanted, max(len(body) - start, 0)))
        if start >= len(body) and wanted:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server(mirror):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeServer)
    httpd.files = {LARGE: (mirror[0] / LARGE).read_bytes()}
    httpd.log = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_http_resume_asks_for_the_rest_only(server, tmp_path):
    body = server.files[LARGE]
    url = f"http://127.0.0.1:{server.server_address[1]}/{LARGE}"
    dest = tmp_path / LARGE
    dest.with_name(LARGE + ".part").write_bytes(body[:1000])
    fetch([url], dest, OFFICIAL_MD5[LARGE])
    assert dest.read_bytes() == body
    assert server.log == [("bytes=1000-", len(body) - 1000)]

    dest.rename(dest.with_name(LARGE + ".part"))      # whole, but not yet renamed: 416
    fetch([url], dest, OFFICIAL_MD5[LARGE])
    assert dest.read_bytes() == body and server.log[-1] == (f"bytes={len(body)}-", 0)
