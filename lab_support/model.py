"""``lab.model``: the offline model as an OpenAI-compatible endpoint that behaves like a real
one under load (a rate limit on the engine clock, scripted failures, usage per model).

    lab.model.limit(rpm=30)            # the 31st request in one engine minute gets a 429
    lab.model.limit(rpm=30, minute=6)  # ... in any 6 s (a minute scaled for a real server)
    lab.model.fail(times=2, status=429)
    lab.model.usage()                  # requests, 429s, tokens in/out per model and caller
    lab.model.url                      # base URL for Adapter(base_url=...) / AsyncOpenAI
    lab.model.reset()

The endpoint (``chat_agent.openai_compat`` behind a ``model_gate.ModelGate``) is served from a
thread in the kernel on first use; ``lab.start(app=...)`` starts it too. While it runs,
``CHAT_AGENT_MODEL_URL`` names it, so the Worker's agents call it over HTTP with the OpenAI
client (``chat_agent.models``): their ``step.run`` calls and any ``step.ai.infer`` pointed at
``lab.model.url`` count against one limit and one script. The limiter's clock is the engine's
(virtual on the embedded engine; wall time on a real dev server or with no engine).

With ``OPENAI_API_KEY`` set the Worker calls the real OpenAI model, which has its own limits:
this endpoint (and its limiter) then only sees calls made to ``lab.model.url`` directly.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from .model_gate import DEFAULT_HOLD_S, WINDOW_MS, ModelGate, ModelUsage

if TYPE_CHECKING:
    from .lab_object import Lab

MODEL_URL_ENV = "CHAT_AGENT_MODEL_URL"
MODEL_TIMEOUT_ENV = "CHAT_AGENT_MODEL_TIMEOUT"
# The Worker's OpenAI client gives up after this long; a scripted timeout holds longer.
CLIENT_TIMEOUT_S = 5.0


def engine_now_ms(lab: "Lab") -> int:
    """The engine's clock (virtual on the embedded engine), else the wall clock."""
    api = lab.api
    if api is not None and api.kind == "embedded":
        return int(api.lab_get("clock", "lab.model (engine clock)")["now_ms"])
    return int(time.time() * 1000)


class LabModel:
    def __init__(self, lab: "Lab") -> None:
        self._lab = lab
        self.gate = ModelGate(lambda: engine_now_ms(lab), hold_s=DEFAULT_HOLD_S)
        self._host = None
        self._env_before: dict[str, str | None] = {}

    # -- serving ---------------------------------------------------------------------------
    def start(self) -> "LabModel":
        """Serve the endpoint (once) and point the Worker's model at it."""
        if self._host is None:
            from chat_agent.openai_compat import create_app

            from .host import ThreadedHost

            self._host = ThreadedHost(create_app(gate=self.gate)).start()
            self._set_env(MODEL_URL_ENV, self._host.url + "/v1")
            if not os.environ.get(MODEL_TIMEOUT_ENV):
                self._set_env(MODEL_TIMEOUT_ENV, str(CLIENT_TIMEOUT_S))
        return self

    def _set_env(self, name: str, value: str) -> None:
        self._env_before.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def stop(self) -> None:
        if self._host is not None:
            self._host.stop()
            self._host = None
        for name, value in self._env_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._env_before.clear()

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL (ends in ``/v1``)."""
        return self.start()._host.url + "/v1"

    # -- behaviour -------------------------------------------------------------------------
    def limit(self, rpm: int | None = 30, minute=None) -> "LabModel":
        """Answer 429 above ``rpm`` requests per engine minute (None: no limit). ``minute``
        (a timedelta or seconds, at least 1 s): how long that minute lasts, for a notebook
        that scales its throttle periods on a real dev server (default 60 s)."""
        from .controls import to_seconds

        window_ms = WINDOW_MS if minute is None else round(to_seconds(minute) * 1000)
        self.gate.limit(rpm, window_ms)
        self.start()
        self._note_real_model()
        return self

    def fail(self, times: int = 2, status: int | str = 429,
             hold: float | None = None) -> "LabModel":
        """The next ``times`` requests fail with ``status``: 429, 500, 502, 503, or
        "timeout" (held ``hold`` real seconds, default 6, then a 504)."""
        if hold is not None:
            if not isinstance(hold, (int, float)) or isinstance(hold, bool) or not 0 <= hold <= 60:
                raise ValueError(f"hold is 0-60 real seconds, got {hold!r}")
            self.gate.hold_s = float(hold)
        self.gate.fail(times, status)
        self.start()
        self._note_real_model()
        return self

    def usage(self) -> ModelUsage:
        """Requests, 429s, other errors and tokens in/out, per model and caller."""
        return self.gate.usage()

    def reset(self) -> "LabModel":
        """No limit, no scripted failures, an empty ledger."""
        self.gate.reset()
        return self

    def _note_real_model(self) -> None:
        if os.environ.get("OPENAI_API_KEY"):
            print("Note: OPENAI_API_KEY is set, so the Worker calls the real OpenAI model "
                  "(with OpenAI's own limits). lab.model's limit and script apply only to "
                  f"calls sent to {self.url}.")

    def __repr__(self) -> str:
        where = self._host.url + "/v1" if self._host else "(not started: use lab.model.url)"
        limit = f"{self.gate.rpm} requests/min (engine clock)" if self.gate.rpm else "no limit"
        pending = self.gate.pending_failures()
        return (f"lab.model: the offline OpenAI-compatible model at {where}; {limit}; "
                f"{len(pending)} scripted failure(s) pending {pending or ''}\n"
                f"{self.usage()!r}")
