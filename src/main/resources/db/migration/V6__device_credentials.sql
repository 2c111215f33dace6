-- MQTT credentials of devices, kept by the broker's dynamic security plugin. Only metadata lives here:
-- the password is shown once by the REST call that sets it and is stored nowhere by Kaiser.
CREATE TABLE device_credentials (
    esp_id          text PRIMARY KEY REFERENCES devices (esp_id) ON DELETE CASCADE,
    username        text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      text,
    rotated_at      timestamptz,
    rotation_count  integer     NOT NULL DEFAULT 0,
    revoked_at      timestamptz
);
