"""The service under test, for the whole session: the real service (`node --import tsx src/main.ts`
from the repository root) on a free loopback port with the built-in sim catalogue. Its address comes
from the "listening" log line, the key from the development key it prints on first start; SIGTERM
stops it at the end (which flushes the usage ledger).

Its database: with DATABASE_URL set (CI), a fresh Postgres database created for this session and
dropped after it, so tests can read ledger rows (psql); otherwise the embedded PGlite in a temporary
directory, where ledger rows cannot be read from outside (GetUsage is checked instead; under CI=true
that fails, so CI cannot lose the check silently).
"""

import collections
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import grpc
import pytest

from llm_service.v1 import llm_service_pb2_grpc as llm_grpc

ROOT = Path(__file__).resolve().parents[2]
UUID = re.compile(r"^[0-9a-f-]{36}$")


def psql(db_url: str, sql: str) -> str:
    """Runs one SQL command; returns its unaligned, tuples-only output."""
    done = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db_url, "-c", sql],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Service:
    addr: str
    key: str
    db_url: Optional[str]  # the service's Postgres database; None with PGlite

    @property
    def auth(self):
        return (("authorization", f"Bearer {self.key}"),)

    def ledger_status(self, request_id: str, timeout: float = 10.0) -> Optional[str]:
        """The status (ok, failed, cancelled) of a request's ledger row once written; None with PGlite."""
        if self.db_url is None:
            if os.environ.get("CI") == "true":
                pytest.fail("CI=true but DATABASE_URL is unset: the ledger row cannot be read from the embedded database")
            return None
        assert UUID.match(request_id), request_id
        deadline = time.monotonic() + timeout
        while True:
            status = psql(self.db_url, f"select status from generations where request_id = '{request_id}'")
            if status:
                return status
            if time.monotonic() > deadline:
                pytest.fail(f"no ledger row for request {request_id} within {timeout} s")
            time.sleep(0.05)


class _Process:
    """The service process, its output drained by threads into a ring buffer."""

    def __init__(self, env: dict):
        node = ROOT / "node_modules" / ".bin" / "node"
        if not node.exists():
            raise RuntimeError(f"{node} is missing: run `npm ci` in the repository root first")
        self.output = collections.deque(maxlen=200)
        self.address: Optional[str] = None
        self.key: Optional[str] = None
        self.ready = threading.Condition()
        self.proc = subprocess.Popen(
            [str(node), "--import", "tsx", "src/main.ts"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, "stderr"), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, name: str) -> None:
        for line in stream:
            line = line.rstrip("\n")
            with self.ready:
                self.output.append(f"{name}: {line}")
                if name == "stdout" and self.address is None:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        entry = {}
                    if isinstance(entry, dict) and entry.get("message") == "listening":
                        self.address = entry["address"]
                if name == "stderr" and self.key is None:
                    found = re.search(r"export LLM_API_KEY=(\S+)", line)
                    if found:
                        self.key = found.group(1)
                self.ready.notify_all()
        with self.ready:
            self.ready.notify_all()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.ready:
            while self.address is None or self.key is None:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the service exited ({self.proc.returncode}) before it was ready:\n{self.log()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"the service was not ready within {timeout} s:\n{self.log()}")
                self.ready.wait(min(left, 0.5))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"the service did not exit within 20 s of SIGTERM:\n{self.log()}")
        for reader in self.readers:
            reader.join(5)
        return self.proc.returncode

    def log(self) -> str:
        return "\n".join(self.output)


@contextlib.contextmanager
def running_service(extra_env: Optional[dict] = None) -> Iterator[Service]:
    """Starts the service (fresh database) with the environment below plus extra_env; stops it after."""
    # Exactly these variables, so a developer's own settings (LLM_CONFIG, REDIS_URL, ...) stay out.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", tempfile.gettempdir()),
        "HOST": "127.0.0.1",
        "PORT": "0",
        "LEDGER_FLUSH_MS": "20",
        "LOG_LEVEL": "info",
    }
    admin_url = os.environ.get("DATABASE_URL")
    db_name = db_url = None
    # A data directory of its own in every case: with Postgres it still holds the ledger's spool
    # (crash journal, outage spool), which one process at a time may use.
    data_dir = tempfile.mkdtemp(prefix="llm-sdk-python-")
    env["DATA_DIR"] = data_dir
    if admin_url:
        db_name = f"llm_sdk_python_{secrets.token_hex(4)}"
        psql(admin_url, f"create database {db_name}")
        db_url = urllib.parse.urlparse(admin_url)._replace(path=f"/{db_name}").geturl()
        env["DATABASE_URL"] = db_url
    env.update(extra_env or {})
    process = None
    try:
        process = _Process(env)
        process.wait_ready(90)
        yield Service(addr=process.address, key=process.key, db_url=db_url)
        code = process.stop()
        assert code == 0, f"the service exited with {code} after SIGTERM:\n{process.log()}"
    finally:
        if process is not None and process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()
        if data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        if db_name:
            psql(admin_url, f"drop database if exists {db_name} with (force)")


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    with running_service() as s:
        yield s


@pytest.fixture
def client(service: Service) -> Iterator[llm_grpc.LlmServiceStub]:
    """A sync grpcio stub on its own channel."""
    with grpc.insecure_channel(service.addr) as channel:
        yield llm_grpc.LlmServiceStub(channel)
