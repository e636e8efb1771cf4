"""examples/python runs against the service and prints what its README promises."""

import os
import subprocess
import sys

from conftest import ROOT


def test_python_example_runs(service):
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "main.py")],
        env={**os.environ, "LLM_SERVICE_ADDR": service.addr, "LLM_API_KEY": service.key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for want in [
        "model: sim/echo (aliases echo",
        "model: sim/lorem (aliases lorem",
        "generate: 'Hello from Python!' (model sim/echo",
        "stream: [started sim/echo on sim] 'Stream ' 'these ' 'words' [completed FINISH_REASON_STOP",
        "rate limited: RESOURCE_EXHAUSTED, reason PROVIDER_RATE_LIMITED, retry after 1.5s",
        "retried: 'Worth the wait' after 2 attempt(s)",
    ]:
        assert want in done.stdout, done.stdout
