"""my_worker: your customer-support Worker's Inngest envelope, built in the Decision notebooks.

The Worker itself (the agent, its tools and skills, the customer-data MCP server, the store) is
the shipped ``chat_agent`` / ``customer_data_mcp``; this package only wraps it.
"""
