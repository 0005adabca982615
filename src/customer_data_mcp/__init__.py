"""The Worker's system of record (Postgres) and the ``customer-data`` MCP server over it.

``store`` is the plain Python API (used by the MCP server, the notebooks and the tests);
``server`` exposes it as MCP tools; ``db`` finds or starts the database; ``migrate`` applies
``migrations/*.sql`` and seeds the lab data.
"""
