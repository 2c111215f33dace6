-- Commands issued over REST and their outcome. The row is the correlation state: it survives restarts and is
-- shared by every server instance on the same database. A row with published_at NULL is in the outbox.
CREATE TABLE commands (
    correlation_id   text PRIMARY KEY,
    esp_id           text        NOT NULL,
    command_type     text        NOT NULL,
    gpio             smallint,
    topic            text        NOT NULL,
    qos              smallint    NOT NULL,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL CHECK (status IN ('pending','accepted','applied','failed','timed_out','expired')),
    status_reason    text,
    idempotency_key  text,
    request_hash     text,
    incident_id      text,
    issued_by        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,
    ack_timeout_ms   integer     NOT NULL,
    ack_deadline     timestamptz,
    published_at     timestamptz,
    accepted_at      timestamptz,
    completed_at     timestamptz,
    answer           jsonb,
    answer_topic     text,
    late_answers     jsonb
);
CREATE UNIQUE INDEX commands_idempotency_uq ON commands (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX commands_outbox_idx ON commands (created_at) WHERE published_at IS NULL AND status = 'pending';
CREATE INDEX commands_deadline_idx ON commands (ack_deadline) WHERE status IN ('pending', 'accepted');
CREATE INDEX commands_esp_idx ON commands (esp_id, created_at DESC);
CREATE INDEX commands_incident_idx ON commands (incident_id) WHERE incident_id IS NOT NULL;

-- Emergency latches: scope is an esp_id or '*' (every device). A latched device refuses commands (423).
CREATE TABLE emergency_latches (
    scope        text PRIMARY KEY,
    incident_id  text        NOT NULL,
    reason       text,
    issued_by    text,
    latched_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE emergency_incidents (
    incident_id  text PRIMARY KEY,
    scope        text        NOT NULL,
    gpio         smallint,
    reason       text,
    issued_by    text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    cleared_at   timestamptz,
    clear_reason text
);
