"""A ComfyUI stand-in for CI: PromptServer's surface and ComfyUI 0.3.64's recorded event sequences.

    host = await start_test_host(tmp_path, before_start=plugin_setup)
    ... talk to host.url over HTTP and /ws, or to host.server directly ...
    await host.stop()

See tests/test_testhost.py for what is checked against the traces in tests/fixtures/comfyui/traces.
"""

from __future__ import annotations

from .host import ComfyTestHost, start_test_host
from .promptqueue import PromptQueue
from .promptserver import FakePromptServer

__all__ = ["ComfyTestHost", "FakePromptServer", "PromptQueue", "start_test_host"]
