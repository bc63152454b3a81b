"""The local transport: the interface every probe relies on, exercised for real."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from envprobe.transport.base import Source
from envprobe.transport.local import LocalTransport


@pytest.fixture
def tr():
    t = LocalTransport()
    yield t
    t.close()


def test_argv_and_shell(tr):
    r = tr.run(["printf", "%s|", "a b", "c"])
    assert (r.rc, r.stdout, r.stderr) == (0, "a b|c|", "")
    r = tr.run("echo out; echo err >&2; exit 7")
    assert (r.rc, r.stdout, r.stderr) == (7, "out\n", "err\n")
    assert r.ok is False and r.duration_ms > 0


def test_nonzero_exit_and_missing_command_are_data(tr):
    r = tr.run(["definitely-not-a-command-xyz"])
    assert r.rc == 127 and "not found" in r.stderr
    assert tr.run("exit 3").rc == 3


def test_stdin_and_env(tr):
    r = tr.run(["cat"], stdin="你好\n")
    assert r.stdout == "你好\n"
    r = tr.run("echo $ENVPROBE_T", env={"ENVPROBE_T": "v1"})
    assert r.stdout == "v1\n"


def test_timeout_kills_the_whole_process_group(tr, tmp_path: Path):
    marker = tmp_path / "m"
    t0 = time.perf_counter()
    r = tr.run(f"sh -c 'sleep 20; touch {marker}' & sleep 20", timeout=0.5)
    assert r.timed_out and r.rc == -1
    assert time.perf_counter() - t0 < 5
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"touch {marker}" not in ps


def test_files(tr, tmp_path: Path):
    src = tmp_path / "a.txt"
    src.write_bytes(b"\x00\x01abc")
    assert tr.read_file(str(src)) == b"\x00\x01abc"
    assert tr.read_file(str(src), max_bytes=2) == b"\x00\x01"
    with pytest.raises(FileNotFoundError):
        tr.read_file(str(tmp_path / "missing"))
    tr.put(str(src), str(tmp_path / "b.txt"))
    tr.get(str(tmp_path / "b.txt"), str(tmp_path / "c.txt"))
    assert (tmp_path / "c.txt").read_bytes() == b"\x00\x01abc"


def test_connect_opens_a_real_stream(tr):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    try:
        with tr.connect("127.0.0.1", port, timeout=2) as c:
            peer, _ = srv.accept()
            c.sendall(b"ping")
            assert peer.recv(4) == b"ping"
            peer.close()
    finally:
        srv.close()
    with pytest.raises(ConnectionRefusedError):
        tr.connect("127.0.0.1", port, timeout=2)


def test_fetch_caches_until_forget(tr, tmp_path: Path):
    f = tmp_path / "v"
    f.write_text("1")
    file_src, cmd_src = Source.file(str(f)), Source.command(f"cat {f}")
    first = tr.fetch([file_src, cmd_src])
    assert first[file_src].stdout == "1" and first[cmd_src].stdout == "1"
    f.write_text("2")
    assert tr.fetch([file_src])[file_src].stdout == "1"  # one scan sees one snapshot
    tr.forget()
    assert tr.fetch([file_src, cmd_src])[cmd_src].stdout == "2"
    missing = Source.file(str(tmp_path / "none"))
    r = tr.fetch([missing])[missing]
    assert r.rc == 1 and "FileNotFoundError" in r.stderr


def test_commands_run_with_c_locale(tr):
    src = Source.command("echo $LC_ALL")
    assert tr.fetch([src])[src].stdout == "C\n"


def test_memo_computes_once_per_scan_even_when_asked_concurrently(tr):
    import threading

    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return len(calls)

    results = []
    threads = [threading.Thread(target=lambda: results.append(tr.memo("k", slow))) for _ in range(5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [1] * 5 and len(calls) == 1
    tr.forget()  # a retry observes afresh
    assert tr.memo("k", slow) == 2


def test_shell_path_probes_refuse_a_windows_host_instead_of_answering_absent():
    from envprobe.probes.base import ProbeContext, ProbeError
    from envprobe.probes.package import PackageParams, PackageProbe
    from envprobe.probes.software import SoftwareParams, SoftwareProbe

    class WindowsLike(LocalTransport):
        @property
        def os_family(self) -> str:
            return "windows"

    ctx = ProbeContext(WindowsLike(), "win01", 5.0, prefer_native=False)
    for probe, params in ((SoftwareProbe(), SoftwareParams.model_validate({"name": "java"})),
                          (PackageProbe(), PackageParams.model_validate({"name": "bc"}))):
        with pytest.raises(ProbeError) as info:
            probe.collect(ctx, params)
        assert "cannot observe a Windows host" in info.value.message["en"]
        assert "Windows" in info.value.message["zh-CN"]
