-- Subzones as the device confirmed them (subzone/ack), never as merely requested: an assign ack upserts the row with
-- the gpios of the command it answers, a remove ack deletes it, a safe-mode ack sets the flag.
CREATE TABLE subzones (
    esp_id                text        NOT NULL REFERENCES devices (esp_id) ON DELETE CASCADE,
    subzone_id            text        NOT NULL,
    subzone_name          text,
    parent_zone_id        text,
    assigned_gpios        smallint[]  NOT NULL DEFAULT '{}',
    safe_mode_active      boolean     NOT NULL DEFAULT true,
    correlation_id        text,
    assigned_at           timestamptz NOT NULL DEFAULT now(),
    last_ack_at           timestamptz NOT NULL DEFAULT now(),
    safe_mode_changed_at  timestamptz,
    PRIMARY KEY (esp_id, subzone_id)
);
