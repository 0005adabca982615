-- The Worker's system of record. Plain SQL, safe to apply more than once
-- (the migrate command also records applied files in schema_migrations).

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS customers (
    id                      text PRIMARY KEY,
    email                   text NOT NULL UNIQUE,
    name                    text NOT NULL,
    tier                    text NOT NULL CHECK (tier IN ('free', 'pro', 'enterprise')),
    created_at              timestamptz NOT NULL DEFAULT now(),
    last_proactive_outreach timestamptz
);

-- A thread is one conversation with a customer; messages hang off it.
CREATE TABLE IF NOT EXISTS threads (
    id          text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    subject     text NOT NULL,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS threads_customer_idx ON threads (customer_id, updated_at DESC);

CREATE TABLE IF NOT EXISTS messages (
    id         bigserial PRIMARY KEY,
    thread_id  text NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('customer', 'agent', 'draft')),
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS messages_thread_idx ON messages (thread_id, id);

CREATE TABLE IF NOT EXISTS tickets (
    id          text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    subject     text NOT NULL,
    summary     text NOT NULL,
    resolution  text,
    status      text NOT NULL CHECK (status IN ('open', 'resolved', 'escalated')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);

CREATE TABLE IF NOT EXISTS refunds (
    id           bigserial PRIMARY KEY,
    customer_id  text NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    amount_cents integer NOT NULL CHECK (amount_cents > 0),
    status       text NOT NULL CHECK (status IN ('requested', 'issued', 'denied')),
    reason       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One embedding per resolved ticket; the dimension matches chat_agent's embedder.
CREATE TABLE IF NOT EXISTS ticket_embeddings (
    ticket_id  text PRIMARY KEY REFERENCES tickets(id) ON DELETE CASCADE,
    model      text NOT NULL,
    embedding  vector(64) NOT NULL
);

-- Drafts the agent wrote: replies (in a thread), proactive outreach, escalations.
CREATE TABLE IF NOT EXISTS drafts (
    id          bigserial PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    thread_id   text REFERENCES threads(id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('reply', 'outreach', 'escalation')),
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS audit_log (
    id          bigserial PRIMARY KEY,
    action      text NOT NULL,
    customer_id text,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_log_customer_idx ON audit_log (customer_id, created_at);
CREATE INDEX IF NOT EXISTS audit_log_action_idx ON audit_log (action);

-- The lab's stand-in for Slack: notifications land here and notebooks show them.
CREATE TABLE IF NOT EXISTS outbox (
    id          bigserial PRIMARY KEY,
    channel     text NOT NULL,
    customer_id text,
    message     text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
