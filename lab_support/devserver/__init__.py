"""The embedded engine: a local server that speaks the Inngest dev server's protocol.

Read it in this order, one concern per module:
events (ingest) -> sync (apps/functions) -> runs (store) -> sdk_call (request/response)
-> executor (opcodes) -> flow (flow control) -> scheduler (queue, timers) -> clock.
The HTTP surfaces are rest (v1/v0), graphql_api, lab_api, app (assembly).
"""

VERSION = "0.1.0-lab"
