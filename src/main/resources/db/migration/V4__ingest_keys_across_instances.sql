-- The ingest dedupe key becomes "<instance id>:<journal position>": several server instances sharing one
-- database each have their own journal, so a bare position is not unique across them.
ALTER TABLE heartbeat_logs   ALTER COLUMN ingest_pos TYPE text USING 'local:' || ingest_pos;
ALTER TABLE actuator_history ALTER COLUMN ingest_pos TYPE text USING 'local:' || ingest_pos;
ALTER TABLE device_answers   ALTER COLUMN ingest_pos TYPE text USING 'local:' || ingest_pos;
ALTER TABLE error_events     ALTER COLUMN ingest_pos TYPE text USING 'local:' || ingest_pos;
ALTER TABLE dead_letters     ALTER COLUMN ingest_pos TYPE text USING 'local:' || ingest_pos;
ALTER TABLE device_events    ALTER COLUMN ingest_pos TYPE text USING 'local:' || ingest_pos;
