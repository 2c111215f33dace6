-- W3C trace context of a command (issue #7 item 6): the traceparent of the REST request that issued it, or the one
-- the server created, "00-<32 hex trace id>-<16 hex parent id>-<flags>". NULL for commands from before this version.
ALTER TABLE commands ADD COLUMN traceparent text;
-- find a command by the trace id seen in a log line or a device log
CREATE INDEX commands_trace_idx ON commands ((substring(traceparent from 4 for 32))) WHERE traceparent IS NOT NULL;
