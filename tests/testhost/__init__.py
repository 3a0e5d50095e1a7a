"""A ComfyUI stand-in for CI: PromptServer's surface and ComfyUI 0.3.64's recorded event sequences.

    host = await start_test_host(tmp_path, before_start=plugin_setup)
    ... talk to host.url over HTTP and /ws, or to host.server directly ...
    await host.stop()

tests/test_testhost.py replays every recording in tests/fixtures/comfyui/traces and compares the
/ws messages, /history entries and /prompt error bodies with what the real ComfyUI sent.

Where it differs from a real ComfyUI (on purpose or for lack of torch):
- node implementations are Pillow approximations (right sizes, names and PNG metadata, not the same
  pixels); only the model-free nodes in imagenodes.IMPLEMENTATIONS run, any other class from
  object_info validates normally and then fails at execution with NotImplementedError;
- tracebacks in error bodies and execution_error are the test host's own;
- no subgraphs/ephemeral nodes, lazy inputs, async nodes, OUTPUT_IS_LIST or list mapping;
- model folders (`models/checkpoints`, …) are listed with folder_paths' mtime cache and fill the loaders'
  combos, but no loader can run;
- single user ("default"), the comfy-user header is ignored; no /settings, /extensions,
  /internal, static frontend; /free only records its flags;
- the site always binds 127.0.0.1; `listen` only changes what /system_stats' argv reports;
- stop() interrupts a running prompt and closes sockets with 1001 instead of killing a process.

Besides the documented API, `server.paths` (HostPaths), `server.registry` (NodeRegistry) and
`server.interrupt_processing()` are kept stable for test harnesses.
"""

from __future__ import annotations

from .files import HostPaths
from .host import ComfyTestHost, start_test_host
from .promptqueue import PromptQueue
from .promptserver import FakePromptServer
from .registry import NodeRegistry

__all__ = ["ComfyTestHost", "FakePromptServer", "HostPaths", "NodeRegistry", "PromptQueue", "start_test_host"]
