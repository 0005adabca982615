"""One email flow on two durable engines (notebook 25, the course's swap guide made live).

The Worker's email flow (load the customer and the thread, run the agent, save the draft, write
the audit row) is written once as plain step bodies (``email_steps``) that call only the
Worker's internals, and wrapped twice:

* ``inngest_email``: an Inngest function (event trigger, ``step.run`` memos, retries,
  concurrency and throttle in the decorator), served by the lab's process host;
* ``dbos_email``: a DBOS workflow (``@DBOS.workflow`` / ``@DBOS.step``, checkpoints in
  Postgres, a queue for flow control), run by its own worker process
  (``python -m lab_support.swap.dbos_email``) on the same embedded Postgres as the Worker.

``crash`` is the fault both share: a switch, armed from the kernel, that makes the worker
process kill itself (SIGKILL) at a named point of a step, and a log of every step body that
ran, written by both processes. ``dbos_side`` drives the DBOS worker from a kernel: it starts,
restarts and stops the process and talks to its system database through ``DBOSClient``.
"""
