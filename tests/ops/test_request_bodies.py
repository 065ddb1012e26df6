"""Request bodies are judged as they arrive: too large (413), of a type the route does not take (415) or
without a valid token (401), before they are read. In this process, and against a served hub whose
memory is watched while four 200 MB bodies stream in together."""

from __future__ import annotations

import os
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ops.hubprocess import HubProcess
from tests.conftest import Hub
from tests.factories import uscc

MB = 1024 * 1024


def _department() -> dict[str, str]:
    return {"code": uscc(), "name": "市民政局", "level": "city", "region_code": "110100"}


def test_an_unauthenticated_body_gets_401_and_is_not_parsed(client: TestClient) -> None:
    response = client.post("/departments", content=b'{"code": "not json', headers={"Content-Type": "application/json"})
    assert response.status_code == 401, response.text  # not 400 "malformed JSON": the body was never read
    assert response.headers["WWW-Authenticate"] == "Bearer"
    forged = client.post("/departments", json=_department(), headers={"Authorization": "Bearer not-a-token"})
    assert forged.status_code == 401


def test_an_unauthenticated_upload_gets_401_before_it_is_read(client: TestClient) -> None:
    files = {"file": ("people.csv", b"a,b\n" + b"1,2\n" * (2 * MB // 4), "text/csv")}
    response = client.post("/catalog/entries/any/datasets", files=files)
    assert response.status_code == 401, response.text


def test_a_body_of_a_type_the_route_does_not_take_gets_415(client: TestClient, hub: Hub) -> None:
    csv = client.post("/departments", content=b"code,name\n", headers={**hub.admin.headers, "Content-Type": "text/csv"})
    assert csv.status_code == 415, csv.text
    assert "application/json" in csv.json()["detail"] and "text/csv" in csv.json()["detail"]
    # a multipart body may be as large as an upload only where the route takes files
    large = client.post("/departments", files={"file": ("x.csv", b"x" * (2 * MB), "text/csv")}, headers=hub.admin.headers)
    assert large.status_code == 413, large.text
    small = client.post("/departments", files={"file": ("x.csv", b"x", "text/csv")}, headers=hub.admin.headers)
    assert small.status_code == 415, small.text
    untyped = client.post("/departments", content=b'{"code": "x"}', headers=hub.admin.headers)
    assert untyped.status_code == 415 and "no Content-Type" in untyped.json()["detail"]
    token = client.post("/auth/token", content=b"\x00" * 1000, headers={"Content-Type": "application/octet-stream"})
    assert token.status_code == 415, token.text
    merge_patch = {**hub.admin.headers, "Content-Type": "application/merge-patch+json"}
    # a +json type is JSON: taken, and judged on its fields
    assert client.post("/departments", content=b"{}", headers=merge_patch).status_code == 422


def test_a_token_request_larger_than_the_body_limit_gets_413(client: TestClient, hub: Hub) -> None:
    form = b"grant_type=client_credentials&client_id=" + b"x" * hub.settings.max_body_bytes
    response = client.post("/auth/token", content=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


def test_a_valid_token_and_type_still_reach_the_endpoint(client: TestClient, hub: Hub) -> None:
    created = client.post("/departments", json=_department(), headers=hub.admin.headers)
    assert created.status_code == 201, created.text
    # an upload larger than the JSON limit passes where the route takes files, and reaches the endpoint
    files = {"file": ("people.csv", b"a,b\n" + b"1,2\n" * (2 * MB // 4), "text/csv")}
    upload = client.post("/catalog/entries/no-such-entry/datasets", files=files, headers=hub.system().headers)
    assert upload.status_code == 404, upload.text


# --- against a served hub -------------------------------------------------------------------------------

BIG = 200 * MB


def _chunks(total: int, *, chunked: bool) -> Iterator[bytes]:
    """`total` bytes, 64 KiB at a time, generated as they are sent (framed when `chunked`)."""
    piece = b"a" * (64 * 1024)
    for _ in range(total // len(piece)):
        yield b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    if chunked:
        yield b"0\r\n\r\n"


def _stream(port: int, path: str, headers: dict[str, str], *, chunked: bool) -> tuple[int, int]:
    """POST a 200 MB body, stopping as soon as the hub answers: (status, bytes of the body sent)."""
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {BIG}")
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.setblocking(False)
        body, pending = _chunks(BIG, chunked=chunked), memoryview(b"")
        while True:
            readable, _writable, _ = select.select([sock], [sock], [], 60)
            if readable:
                break  # the hub answered: stop sending
            if not pending:
                pending = memoryview(next(body, b""))
                if not pending:
                    break  # all sent; wait for the answer
            try:
                count = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            pending, sent = pending[count:], sent + count
        sock.setblocking(True)
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    return int(answer.split(b" ", 2)[1]), sent


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc")
def test_four_unwanted_200_mb_bodies_at_once_leave_the_hubs_memory_as_it_was() -> None:
    database = os.environ.get("GOVHUB_TEST_DATABASE_URL")
    if database:
        pytest.skip("the body gate is the same on PostgreSQL; one run on the embedded default is enough")
    with HubProcess(scheduler=False) as hub:
        assert hub.proc is not None
        hub.token()
        uploads = "multipart/form-data; boundary=b0undary"
        attempts = [  # (path, headers, chunked, expected status)
            ("/auth/token", {"Content-Type": "application/octet-stream"}, True, 415),
            ("/departments", {"Content-Type": "application/json"}, True, 401),
            ("/departments", {"Content-Type": "text/csv", "Authorization": f"Bearer {hub.token()}"}, False, 413),
            ("/catalog/entries/any/datasets", {"Content-Type": uploads}, False, 401),
        ]
        for path, headers, _chunked, _status in attempts:  # warm up: every path taken once, with a small body
            with socket.create_connection(("127.0.0.1", hub.port)) as sock:
                sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n".encode())
                sock.sendall("".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n{}")
                sock.recv(4096)
        before = _peak_rss_kib(hub.proc.pid)

        results: list[tuple[int, int] | BaseException] = [ValueError("not run")] * len(attempts)

        def run(index: int, path: str, headers: dict[str, str], chunked: bool) -> None:
            try:
                results[index] = _stream(hub.port, path, headers, chunked=chunked)
            except BaseException as exc:
                results[index] = exc

        threads = [threading.Thread(target=run, args=(i, p, h, c)) for i, (p, h, c, _s) in enumerate(attempts)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        grown_mib = (_peak_rss_kib(hub.proc.pid) - before) / 1024
        for (path, _headers, _chunked, status), result in zip(attempts, results, strict=True):
            assert not isinstance(result, BaseException), f"{path}: {result!r}"
            assert result[0] == status, f"{path}: {result[0]} (sent {result[1] // MB} MB)"
            assert result[1] < BIG // 2, f"{path}: the hub took {result[1] // MB} MB before answering"
        assert grown_mib < 20, f"peak memory grew by {grown_mib:.0f} MiB"
        assert hub.request("GET", "/healthz")[0] == 200
