"""The extension in a real Jupyter kernel (ipykernel), executed headless by
nbclient: servers keep serving between cells and the reprs are HTML."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.interop

KERNEL = "netlab-test"

CELLS = [
    "%load_ext lab",
    "%netlab serve echo as mx",
    "c = %netlab connect echo mx\nc.send(b'hello\\r\\n')\nc.expect(b'hello')",
    "await lab.aconnect('echo', 'mx', name='c2')",
    "%netlab log -n 0",
    "lab",
    "%netlab sned c hi",
    "mx.port",
]


@pytest.fixture
def kernel_env(tmp_path: Path, home: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel spec that runs this interpreter, found only by this test."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "netlab test", "language": "python",
    }))
    for key, value in home.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")


def _outputs(cell: Any, kind: str) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == kind]


def test_interop_notebook_serves_between_cells_with_html_reprs(kernel_env: None, tmp_path: Path) -> None:
    """Serve, connect and log in a notebook; the server answers a socket
    between cells; Server, event slice and Lab render as HTML tables."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.cells[6].metadata["tags"] = ["raises-exception"]  # the kernel reports a UsageError as failed
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=60, startup_timeout=90,
                            resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
            if index == 1:
                # between cells, the kernel idle: the reactor thread serves
                html = _outputs(cell, "execute_result")[0].data["text/html"]
                assert '<table class="netlab"' in html and "&lt;Server mx echo tcp://127.0.0.1:" in html
                port = int(html.split("tcp://127.0.0.1:")[1].split()[0])
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(b"between cells\r\n")
                    assert s.recv(100) == b"between cells\r\n"
    results = {i: _outputs(cell, "execute_result") for i, cell in enumerate(nb.cells)}
    assert "Data(raw=b'hello\\r\\n')" in results[2][0].data["text/plain"]
    assert "&lt;Client c2 echo -&gt; tcp://127.0.0.1:" in results[3][0].data["text/html"]
    log_html = results[4][0].data["text/html"]
    assert re.search(r"<caption[^>]*>\d+ events</caption>", log_html)
    assert "&quot;hello\\r\\n&quot;</td>" in log_html
    assert "c1" in log_html and "mx#2" in log_html and "mx#1" in log_html  # the socket client too
    lab_html = results[5][0].data["text/html"]
    assert "<th" in lab_html and ">mx<" in lab_html and ">c2<" in lab_html
    assert results[5][0].data["text/plain"].startswith("<Lab 1 servers, 2 clients")
    # a user mistake is one line on stderr, no traceback
    assert [(o.output_type, o.get("text")) for o in nb.cells[6].outputs] == [
        ("stream", "UsageError: `sned c hi`: unknown command 'sned' — did you mean 'send'?\n")]
    assert int(results[7][0].data["text/plain"]) == port


def test_interop_notebook_interrupt_cancels_a_blocking_expect(kernel_env: None, tmp_path: Path) -> None:
    """Interrupting the kernel (SIGINT, as Jupyter's interrupt button sends)
    during `%netlab expect` ends the cell with one line; the next cell finds
    the lab still serving."""
    nb = nbformat.v4.new_notebook()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(60)
        port = listener.getsockname()[1]
        nb.cells = [nbformat.v4.new_code_cell(src) for src in (
            "import os\n%load_ext lab\n%netlab serve echo as mx\nos.getpid()",
            f"w = %netlab connect echo 127.0.0.1:{port} as w",
            "w.send(b'ready\\r\\n')\n%netlab expect w never --timeout 60",
            "c = lab.connect('echo', mx)\nc.send(b'still\\r\\n')\nc.expect(b'still')",
        )]
        client = NotebookClient(nb, kernel_name=KERNEL, timeout=90, startup_timeout=90,
                                resources={"metadata": {"path": str(tmp_path)}})
        with client.setup_kernel():
            client.execute_cell(nb.cells[0], 0)
            kernel_pid = int(_outputs(nb.cells[0], "execute_result")[0].data["text/plain"])
            client.execute_cell(nb.cells[1], 1)
            peer, _ = listener.accept()
            peer.settimeout(60)
            interrupted = []

            def interrupt_once_waiting() -> None:
                with peer:
                    if peer.recv(100) == b"ready\r\n":
                        time.sleep(0.5)  # from the send to the wait: no event marks it
                        os.kill(kernel_pid, signal.SIGINT)
                        interrupted.append(time.monotonic())

            helper = threading.Thread(target=interrupt_once_waiting, daemon=True)
            helper.start()
            client.execute_cell(nb.cells[2], 2)
            ended = time.monotonic()
            helper.join(10)
            assert interrupted and ended - interrupted[0] < 30
            client.execute_cell(nb.cells[3], 3)
    text = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert text == "interrupted: `expect w never --timeout 60` cancelled; the lab keeps running\n"
    assert "Data(raw=b'still\\r\\n')" in _outputs(nb.cells[3], "execute_result")[0].data["text/plain"]
