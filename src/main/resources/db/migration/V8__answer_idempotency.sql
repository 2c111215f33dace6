-- Idempotent consumer repository (Camel's JdbcMessageIdRepository layout) for device answers: one answer per
-- topic, correlation id and status is processed once, even when the device or the broker delivers it twice,
-- across restarts and across instances sharing the database.
CREATE TABLE camel_messageprocessed (
    processorname  varchar(255) NOT NULL,
    messageid      varchar(100) NOT NULL,
    createdat      timestamp    NOT NULL,
    PRIMARY KEY (processorname, messageid)
);
