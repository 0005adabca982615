"""Production Worker Lab support code. Notebooks use one object: ``from lab_support import lab``.

Importing this package is cheap: the real ``Lab`` (HTTP client, host, widgets) is built on
first use, so graders and scripts that only need a submodule do not pay for it.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["lab"]


class _LazyLab:
    """Stands in for the kernel's single ``Lab`` until something is asked of it."""

    _lock = threading.Lock()

    def __init__(self) -> None:
        object.__setattr__(self, "_real", None)

    def _get(self):
        if self._real is None:
            with self._lock:
                if self._real is None:
                    from .lab_object import Lab

                    object.__setattr__(self, "_real", Lab())
        return self._real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get(), name, value)

    def __dir__(self):
        return dir(self._get())

    def __repr__(self) -> str:
        return repr(self._get()) if self._real is not None else "lab (not started: lab.start(functions))"


lab = _LazyLab()
