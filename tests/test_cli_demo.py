"""`connector demo` as a newcomer meets it: it never deletes what it did not make, and every
command it prints works when pasted into the shell that ran it."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from connector.cli import _command, app
from tests.email.smtp_server import smtp_server

runner = CliRunner()
BIN = Path(sys.executable).parent


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str | None]:
    monkeypatch.chdir(tmp_path)
    return {name: None for name in os.environ if name.startswith("CONNECTOR_")}


def test_demo_refuses_a_directory_it_did_not_make_and_leaves_it_as_it_was(
    clean: dict[str, str | None], tmp_path: Path
) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "connector.db").write_bytes(b"the real books")
    (var / "ledger.beancount").write_text("2026-01-01 open Assets:Bank:USD USD\n")

    result = runner.invoke(app, ["demo", "--dir", "var", "--months", "1"], env=clean)

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "configuration error: --dir var holds files the demo did not make (it marks its own "
        "with .connector-demo), and the demo deletes its directory on each run: give it a new "
        "or empty directory, or delete this one yourself"
    )
    assert sorted(p.name for p in var.iterdir()) == ["connector.db", "ledger.beancount"]
    assert (var / "connector.db").read_bytes() == b"the real books"


def test_demo_refuses_a_file_given_as_its_directory(
    clean: dict[str, str | None], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")

    result = runner.invoke(app, ["demo", "--dir", "notes.txt"], env=clean)

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "configuration error: --dir notes.txt is not a directory: give the demo a new or empty "
        "directory"
    )
    assert notes.read_text() == "mine\n"


def test_commands_are_named_as_the_shell_finds_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not (BIN / "connector").exists():
        pytest.skip("the connector is not installed beside this interpreter")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}/usr/bin:/bin")
    assert (_command("connector"), _command("fava")) == ("connector", "fava")

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # not activated: the path, which works
    assert (_command("connector"), _command("fava")) == (
        str(BIN / "connector"),
        str(BIN / "fava"),
    )
    monkeypatch.chdir(BIN.parent.parent)  # the checkout holding .venv: a relative path
    assert _command("fava") == str((BIN / "fava").relative_to(BIN.parent.parent))


def test_every_command_the_demo_prints_works_when_pasted(
    clean: dict[str, str | None], tmp_path: Path
) -> None:
    if not (BIN / "connector").exists():
        pytest.skip("the connector is not installed beside this interpreter")
    shell = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # an activated environment
        "COLUMNS": "200",
    }
    result = runner.invoke(app, ["demo", "--months", "1"], env={**clean, **shell})
    assert result.exit_code == 0, result.output

    printed = [line.strip() for line in result.stdout.splitlines() if line.startswith("  ")]
    printed = [line for line in printed if line.split()[0] in ("fava", "connector") or "=" in line]
    assert printed == [
        "CONNECTOR_DATABASE_URL=sqlite:///var/demo/connector.db connector invoice pdf INV-000001 "
        "--out var/demo/copy.pdf",
        "fava var/demo/ledger.beancount",
        "CONNECTOR_DATABASE_URL=sqlite:///var/demo/connector.db connector invoice list",
        "CONNECTOR_DATABASE_URL=sqlite:///var/demo/connector.db connector report mrr --as-of "
        "2026-01-31",
        "CONNECTOR_DATABASE_URL=sqlite:///var/demo/connector.db connector usage show 1 --from "
        "2026-01-01",
        "connector sandbox serve --data var/demo/salesforce.db",
    ]
    pdf = subprocess.run(
        ["bash", "-c", printed[0]], env=shell, cwd=tmp_path, capture_output=True, check=False
    )
    assert (pdf.returncode, pdf.stderr) == (0, b"")
    demo = tmp_path / "var" / "demo"
    assert (demo / "copy.pdf").read_bytes() == (demo / "documents" / "INV-000001.pdf").read_bytes()
    printed = printed[1:]
    shows = ["INV-0000", "USD metrics as of 2026-01-31", "bandwidth_gb [us-east]"]
    for line, output in zip(printed[1:4], shows, strict=True):
        ran = subprocess.run(
            ["bash", "-c", line],
            env=shell,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (ran.returncode, ran.stderr) == (0, ""), line
        assert output in ran.stdout, line

    port = _free_port()
    with _Serving(f"{printed[0]} --port {port}", shell, tmp_path, "Starting Fava on"):
        assert _get(f"http://127.0.0.1:{port}/").status_code == 200
    with _Serving(f"{printed[4]} --port 0", shell, tmp_path, "Salesforce sandbox serving at"):
        pass


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Serving:
    """A pasted command that serves until stopped: started, read until it says it serves."""

    def __init__(self, line: str, env: dict[str, str], cwd: Path, ready: str) -> None:
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.ready = ready
        self.line = shlex.split(line)[0]

    def __enter__(self) -> _Serving:
        assert self.process.stdout is not None
        said = []
        for output in self.process.stdout:  # ends (EOF) if the command fails instead
            said.append(output)
            if self.ready in output:
                return self
        raise AssertionError(f"{self.line} did not serve: {''.join(said)}")

    def __exit__(self, *_: object) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate()


def _get(url: str) -> requests.Response:
    """GET once the server that said it serves accepts connections."""
    for _ in range(100):
        try:
            return requests.get(url, timeout=30)
        except requests.ConnectionError:
            time.sleep(0.1)
    return requests.get(url, timeout=30)


def test_the_demo_e_mails_documents_and_reminders_to_a_local_smtp_sink(
    clean: dict[str, str | None], tmp_path: Path
) -> None:
    """With --smtp, every document of a customer with a billing address and every reminder
    of the dunning schedule reaches the sink once, with its PDF; the report counts them."""
    with smtp_server() as (recorder, port):
        result = runner.invoke(
            app,
            ["demo", "--months", "2", "--smtp", f"127.0.0.1:{port}"],
            env={**clean, "COLUMNS": "200"},
        )
    assert result.exit_code == 0, result.output
    database = tmp_path / "var" / "demo" / "connector.db"
    with sqlite3.connect(database) as db:
        sent = dict(
            db.execute(
                "SELECT CASE WHEN kind LIKE 'reminder:%' THEN 'reminder' ELSE kind END, count(*) "
                "FROM email_messages WHERE state = 'sent' GROUP BY 1"
            ).fetchall()
        )
        waiting = db.execute("SELECT count(*) FROM email_messages WHERE state != 'sent'")
        assert waiting.fetchone() == (0,)
    assert set(sent) == {"document", "reminder"}
    messages = [received.message for received in recorder.received]
    assert len(messages) == sum(sent.values())
    assert len({message["Message-ID"] for message in messages}) == len(messages)
    for message in messages:
        (attachment,) = list(message.iter_attachments())
        assert attachment.get_content_type() == "application/pdf"
        assert attachment.get_content().startswith(b"%PDF-")
    reminders = [m for m in messages if ".reminder-" in m["Message-ID"]]
    assert len(reminders) == sent["reminder"]
    text = " ".join(result.stdout.split())
    assert (
        f"E-mails to customers, e-mailed to the SMTP sink at 127.0.0.1:{port}: "
        f"{sent['document']} document sent, {sent['reminder']} reminder sent"
    ) in text


def test_the_demo_refuses_an_smtp_sink_that_is_no_host_and_port(
    clean: dict[str, str | None], tmp_path: Path
) -> None:
    result = runner.invoke(app, ["demo", "--smtp", "localhost"], env=clean)
    assert result.exit_code == 2
    assert "--smtp 'localhost': give HOST:PORT, e.g. 127.0.0.1:1025" in result.output
