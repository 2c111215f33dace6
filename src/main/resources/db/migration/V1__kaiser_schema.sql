-- Kaiser schema: devices, their telemetry and answers, errors and dead letters.
-- ingest_pos is the position of the message in the local ingest journal: a replay of the journal
-- after a crash or a database outage inserts nothing twice (ON CONFLICT DO NOTHING on it).

CREATE TABLE devices (
    esp_id             text PRIMARY KEY,
    kaiser_id          text        NOT NULL,
    status             text        NOT NULL CHECK (status IN ('pending_approval','approved','online','offline','rejected','error')),
    name               text,
    hardware_type      text,
    ip_address         text,
    zone_id            text,
    master_zone_id     text,
    zone_name          text,
    handover_epoch     integer     NOT NULL DEFAULT 1,
    heartbeat_count    bigint      NOT NULL DEFAULT 0,
    first_seen         timestamptz NOT NULL DEFAULT now(),
    last_seen          timestamptz,
    status_changed_at  timestamptz NOT NULL DEFAULT now(),
    last_heartbeat     jsonb,
    heartbeat_metrics  jsonb,
    diagnostics        jsonb,
    last_disconnect    jsonb,
    approved_at        timestamptz,
    approved_by        text,
    rejected_at        timestamptz,
    rejection_reason   text
);
CREATE INDEX devices_status_idx ON devices (status, last_seen);

CREATE TABLE heartbeat_logs (
    id              bigserial PRIMARY KEY,
    ingest_pos      bigint      NOT NULL UNIQUE,
    esp_id          text        NOT NULL,
    received_at     timestamptz NOT NULL,
    device_ts       bigint,
    uptime_s        bigint,
    heap_free       bigint,
    wifi_rssi       integer,
    sensor_count    integer,
    actuator_count  integer,
    system_state    text,
    payload         jsonb       NOT NULL
);
CREATE INDEX heartbeat_logs_esp_idx ON heartbeat_logs (esp_id, received_at DESC);

CREATE TABLE sensor_data (
    id               bigserial PRIMARY KEY,
    esp_id           text             NOT NULL,
    gpio             smallint         NOT NULL,
    sensor_type      text             NOT NULL,
    sensor_address   text             NOT NULL DEFAULT '',
    measured_at      timestamptz      NOT NULL,
    received_at      timestamptz      NOT NULL,
    raw_value        double precision,
    value            double precision,
    unit             text,
    quality          text,
    processing_mode  text,
    zone_id          text,
    subzone_id       text,
    seq              bigint,
    -- natural key: a redelivered or replayed reading is the same row (two DS18B20 on one bus differ by address)
    CONSTRAINT sensor_data_reading_uq UNIQUE (esp_id, gpio, sensor_type, sensor_address, measured_at)
);
CREATE INDEX sensor_data_query_idx ON sensor_data (esp_id, gpio, measured_at DESC);

CREATE TABLE actuator_states (
    esp_id          text        NOT NULL,
    gpio            smallint    NOT NULL,
    actuator_type   text,
    state           text        NOT NULL,
    value           double precision,
    emergency       text,
    last_command    text,
    command_source  text,
    correlation_id  text,
    runtime_ms      bigint,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (esp_id, gpio)
);

CREATE TABLE actuator_history (
    id              bigserial PRIMARY KEY,
    ingest_pos      bigint,
    esp_id          text        NOT NULL,
    gpio            smallint    NOT NULL,
    event           text        NOT NULL,
    command         text,
    value           double precision,
    success         boolean,
    issued_by       text,
    message         text,
    correlation_id  text,
    payload         jsonb,
    at              timestamptz NOT NULL
);
CREATE UNIQUE INDEX actuator_history_ingest_uq ON actuator_history (ingest_pos) WHERE ingest_pos IS NOT NULL;
CREATE INDEX actuator_history_query_idx ON actuator_history (esp_id, gpio, at DESC);

-- Everything a device answers to a server request (acks, responses, outcomes), matched by correlation_id.
CREATE TABLE device_answers (
    id              bigserial PRIMARY KEY,
    ingest_pos      bigint      NOT NULL UNIQUE,
    esp_id          text        NOT NULL,
    topic_key       text        NOT NULL,
    gpio            smallint,
    correlation_id  text,
    status          text,
    payload         jsonb       NOT NULL,
    received_at     timestamptz NOT NULL
);
CREATE INDEX device_answers_corr_idx ON device_answers (correlation_id);
CREATE INDEX device_answers_esp_idx ON device_answers (esp_id, received_at DESC);

CREATE TABLE error_events (
    id              bigserial PRIMARY KEY,
    ingest_pos      bigint      UNIQUE,
    esp_id          text,
    source          text        NOT NULL,
    error_code      integer     NOT NULL,
    severity        integer     NOT NULL,
    category        text,
    message         text,
    context         jsonb,
    device_ts       bigint,
    received_at     timestamptz NOT NULL
);
CREATE INDEX error_events_esp_idx ON error_events (esp_id, received_at DESC);

CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    ingest_pos      bigint      UNIQUE,
    received_at     timestamptz NOT NULL,
    topic           text        NOT NULL,
    topic_key       text,
    esp_id          text,
    reason_code     text        NOT NULL,
    reason          text        NOT NULL,
    payload_size    integer     NOT NULL,
    payload_excerpt text
);
CREATE INDEX dead_letters_time_idx ON dead_letters (received_at DESC);

-- Lifecycle and audit trail of a device (discovered, online, offline, lwt, approved, ...).
CREATE TABLE device_events (
    id          bigserial PRIMARY KEY,
    ingest_pos  bigint,
    esp_id      text        NOT NULL,
    event_type  text        NOT NULL,
    details     jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX device_events_ingest_uq ON device_events (ingest_pos, event_type) WHERE ingest_pos IS NOT NULL;
CREATE INDEX device_events_esp_idx ON device_events (esp_id, at DESC);
