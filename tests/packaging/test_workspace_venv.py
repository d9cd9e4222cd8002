"""The workspace environment (.venv, `make venv`) runs the plugins with the libraries their own environments get."""

from __future__ import annotations

import base64
import hashlib
from importlib.metadata import distribution


def test_the_backoff_module_is_python_backoffs_though_dagster_also_installs_backoff() -> None:
    # singer-sdk and the plugins require python-backoff; Dagster's gql requires `backoff`: both install the
    # module `backoff`, and the last one installed wins. The Makefile reinstalls python-backoff last.
    python_backoff = distribution("python-backoff")
    module_files = [file for file in python_backoff.files or [] if file.parts[0] == "backoff" and file.hash]
    assert module_files, "python-backoff lists no files of the backoff module"
    for file in module_files:
        assert file.hash is not None
        digest = base64.urlsafe_b64encode(hashlib.new(file.hash.mode, file.read_binary()).digest()).rstrip(b"=")
        assert digest.decode() == file.hash.value, f"{file} is not python-backoff's: run `make venv`"
