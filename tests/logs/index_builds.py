"""Watching (and holding) the time index builds of the files backend."""

from __future__ import annotations

import threading
from typing import Any

import pytest


class IndexBuilds:
    """Records each time index build the files backend starts (and whether it extended an older index);
    `gate`, when set, holds every build at its start until the test opens it (`held`: from the start)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, held: bool = False) -> None:
        from opsgate.logs.backends import files

        self.calls: list[bool] = []
        self.started = threading.Event()
        self.gate: threading.Event | None = threading.Event() if held else None
        real = files.time_index

        def recording(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(kwargs.get("after") is not None)
            self.started.set()
            if self.gate is not None:
                assert self.gate.wait(30)
            return real(*args, **kwargs)

        monkeypatch.setattr(files, "time_index", recording)
