"""Every bound the engine puts on what a request, an app or a stored row may ask of it.

Each limit is enforced where the input enters (the module named next to it) and answered with
a 4xx and a message, or, for what an app answers during a run, with a failed run and the
reason. ``docs/engine-contract.md`` lists the same table; a test sits at each limit and just
past it. Where the real dev server has the same bound, the number is the real one.
"""

from __future__ import annotations

KIB, MIB = 1024, 1024 * 1024
DAY_MS = 86_400_000

# -- request bodies (bodies.py; 413 past the cap, read with the cap, never in full) ---------
EVENT_BODY_MAX_BYTES = 3 * MIB        # POST /e/{key}: the real server's 3 MiB
SYNC_BODY_MAX_BYTES = 4 * MIB         # POST /fn/register
GRAPHQL_BODY_MAX_BYTES = 4 * MIB      # POST /v0/gql (an invoke carries an event's data)
MCP_BODY_MAX_BYTES = 4 * MIB          # /mcp (send_event carries an event's data): mcp's own
API_BODY_MAX_BYTES = 1 * MIB          # /lab/v1, /v1 REST and anything else
JSON_MAX_DEPTH = 64                   # nesting of any JSON body (event data included)

# -- events (events.py) --------------------------------------------------------------------
MAX_EVENTS_PER_REQUEST = 5000         # the real server's
MAX_EVENT_BYTES = 3 * MIB             # one event, serialised: the real server's
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1   # JSON integers must fit 64 bits (CEL's int)

# -- registrations (sync.py, sync_schema.py) ----------------------------------------------
EXPRESSION_MAX_CHARS = 4096           # one CEL expression (also GraphQL and REST filters)

# -- what an app answers (sdk_call.py, sync.py, executor.py) --------------------------------
SDK_REPLY_MAX_BYTES = 8 * MIB         # one answer to an execution request: the real server's
SYNC_REPLY_MAX_BYTES = 1 * MIB        # the app's answer to the sync PUT
MAX_OPS_PER_REPLY = 1000              # opcodes in one 206 answer: the real server's
MAX_PLANS_PER_STEP = 10               # StepPlanned for one step before the run fails
MAX_PLANS_PER_RUN = 2000              # StepPlanned ops in one run before the run fails
MAX_INVOKE_DEPTH = 10                 # a run invoked by a run invoked by ... at most this deep

# -- time (clock.py, durations.py) ---------------------------------------------------------
CLOCK_MAX_MS = 4_102_444_800_000      # 2100-01-01T00:00:00Z: no request moves the clock past it
CLOCK_HARD_MAX_MS = 221_845_392_000_000   # 9000-01-01: nor the engine's own jump to a timer
MAX_DURATION_MS = 3650 * DAY_MS       # any duration string or number: 10 years
MAX_WAIT_MS = 366 * DAY_MS            # sleep / wait_for_event / invoke timeout: the real 366 d

# -- GraphQL (graphql_api.py) --------------------------------------------------------------
GRAPHQL_MAX_DEPTH = 12                # nested selections, fragments expanded
GRAPHQL_MAX_COST = 2000               # fields selected, fragments expanded, aliases counted

# -- MCP docs search (mcp_tools.py) --------------------------------------------------------
GREP_PATTERN_MAX_CHARS = 500          # the regex itself; matching is linear time (RE2)
