"""Fixtures of podiam's end-to-end suite: a real `podiam serve` per test module (account
111122223333, fresh data directory, free port), the venv's AWS CLI and boto3 against it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import botocore.parsers
import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))

from podiam_e2e import AWS_CLI, PROCESS_LOGS, Podiam, leaked_secrets, podiam_bin, remember_secrets  # noqa: E402

# Nothing from the developer's shell reaches in-process boto3 either.
for _k in [k for k in os.environ if k.startswith("AWS_")]:
    del os.environ[_k]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def pytest_sessionstart(session):
    missing = [p for p in (podiam_bin(), AWS_CLI) if not os.access(p, os.X_OK)]
    if missing:
        pytest.exit(f"not executable: {', '.join(missing)} (build podiam, run scripts/pyenv.sh; set PODIAM_BIN)", 2)


# Remember every secret podiam hands this process (through requests or boto3), so that the
# session can check that none reached a log.
_requests_send = requests.Session.send


def _send_and_remember(self, request, **kw):
    resp = _requests_send(self, request, **kw)
    if not kw.get("stream"):
        remember_secrets(resp.content)
    return resp


requests.Session.send = _send_and_remember
_botocore_parse = botocore.parsers.ResponseParser.parse


def _parse_and_remember(self, response, shape):
    remember_secrets(response.get("body"))
    return _botocore_parse(self, response, shape)


botocore.parsers.ResponseParser.parse = _parse_and_remember


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_logs():
    """After every server of the session has stopped: no secret access key or session token a
    test was given (nor any root key a server wrote) appears in a podiam process's log."""
    yield
    checked, leaked = leaked_secrets()
    assert checked or not PROCESS_LOGS, "no secret was seen: the check would pass vacuously"
    assert not leaked, f"{len(leaked)} of {checked} secrets appear in podiam logs: {leaked[:5]}"


def start_server(tmp_path_factory, name: str = "podiam", **kw) -> Podiam:
    base = tmp_path_factory.mktemp(name)
    return Podiam(base / "data", **kw).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory, request):
    """One podiam per test module (extra `serve` flags from the module's PODIAM_ARGS); its log is
    printed if a test failed."""
    s = start_server(tmp_path_factory, request.module.__name__.rsplit(".", 1)[-1],
                     extra_args=getattr(request.module, "PODIAM_ARGS", ()),
                     listen_host=getattr(request.module, "PODIAM_LISTEN_HOST", "127.0.0.1"))
    yield s
    failed = request.session.testsfailed
    died = s.proc is not None and s.proc.poll() is not None
    rc = s.stop()
    if failed or died or rc != 0:
        sys.stderr.write(f"\n--- podiam log ({request.module.__name__}, exit {rc}) ---\n{s.log()[-4000:]}\n")
    # the server must have survived the module and stop cleanly on SIGTERM
    assert not died, f"podiam exited during {request.module.__name__} with status {rc}"
    assert rc == 0, f"podiam exited with status {rc} on SIGTERM"
