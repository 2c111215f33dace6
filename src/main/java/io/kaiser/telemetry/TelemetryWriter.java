package io.kaiser.telemetry;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.sql.Types;
import java.util.List;
import java.util.Map;

import javax.sql.DataSource;

/**
 * Writes one journal batch of readings to {@code sensor_data}: one JDBC batch with positional parameters in one
 * transaction. A replayed reading (same natural key) is skipped, never doubled.
 * <p>
 * Not camel-sql: its named parameters are parsed again for every row of a batch, which was the largest share of the
 * ingest drainer's CPU in the profile (docs/benchmarks.md).
 */
public final class TelemetryWriter {
    static final String INSERT = """
            INSERT INTO sensor_data (esp_id, gpio, sensor_type, sensor_address, measured_at, received_at, raw_value, value, unit,
                                     quality, processing_mode, zone_id, subzone_id, seq)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT ON CONSTRAINT sensor_data_reading_uq DO NOTHING""";

    private final DataSource dataSource;

    public TelemetryWriter(DataSource dataSource) {
        this.dataSource = dataSource;
    }

    /** Inserts the rows built by {@link TelemetryRows} (the driver rewrites the batch into multi-row INSERTs). */
    public void insert(List<Map<String, Object>> rows) throws SQLException {
        if (rows.isEmpty()) {
            return;
        }
        try (Connection c = dataSource.getConnection()) {
            boolean autoCommit = c.getAutoCommit();
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement(INSERT)) {
                for (Map<String, Object> r : rows) {
                    ps.setString(1, (String) r.get("esp_id"));
                    ps.setInt(2, ((Number) r.get("gpio")).intValue());
                    ps.setString(3, (String) r.get("sensor_type"));
                    ps.setString(4, (String) r.get("sensor_address"));
                    ps.setTimestamp(5, (Timestamp) r.get("measured_at"));
                    ps.setTimestamp(6, (Timestamp) r.get("received_at"));
                    setDouble(ps, 7, r.get("raw_value"));
                    setDouble(ps, 8, r.get("value"));
                    setText(ps, 9, r.get("unit"));
                    setText(ps, 10, r.get("quality"));
                    setText(ps, 11, r.get("processing_mode"));
                    setText(ps, 12, r.get("zone_id"));
                    setText(ps, 13, r.get("subzone_id"));
                    if (r.get("seq") instanceof Number seq) {
                        ps.setLong(14, seq.longValue());
                    } else {
                        ps.setNull(14, Types.BIGINT);
                    }
                    ps.addBatch();
                }
                ps.executeBatch();
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            } finally {
                c.setAutoCommit(autoCommit);
            }
        }
    }

    private static void setDouble(PreparedStatement ps, int i, Object v) throws SQLException {
        if (v instanceof Number n) {
            ps.setDouble(i, n.doubleValue());
        } else {
            ps.setNull(i, Types.DOUBLE);
        }
    }

    private static void setText(PreparedStatement ps, int i, Object v) throws SQLException {
        if (v == null) {
            ps.setNull(i, Types.VARCHAR);
        } else {
            ps.setString(i, v.toString());
        }
    }
}
