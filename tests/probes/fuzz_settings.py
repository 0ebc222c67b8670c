"""The example project's settings for the fuzz test (tests/e2e/test_fuzz_frames.py).

MAX_BAD_FRAMES is raised so that a connection is not closed with 4400 in the
middle of a batch: a client that goes on sending after the server closed can
lose the close frame to a TCP reset (1006), which would hide the close code
the test checks. 4400 itself is tested in test_websocket_limits_and_bad_frames.py.
"""

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {
    **STREAMING,
    "MAX_BAD_FRAMES": 1_000_000,
}
