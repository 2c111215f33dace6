package io.kaiser.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;

import org.apache.camel.CamelContext;
import org.apache.camel.main.Main;

/**
 * A real Kaiser server in the test JVM: the project's routes and application.properties, with a unique
 * kaiser_id, instance id, database, journal directory and HTTP port, so test classes never see each other's
 * traffic. It can be stopped and started again with the same identity (same MQTT session, same journal).
 */
public final class KaiserServer implements AutoCloseable {
    private final TestInfrastructure infra = TestInfrastructure.get();
    private final Properties properties = new Properties();
    private final String kaiserId;
    private final String database;
    private final int port;
    private Main main;

    public KaiserServer(String name) {
        this(name, Map.of());
    }

    public KaiserServer(String name, Map<String, String> overrides) {
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        this.kaiserId = "t" + name.toLowerCase().replaceAll("[^a-z0-9]", "") + suffix;
        this.database = infra.createDatabase("kaiser_" + name.toLowerCase().replaceAll("[^a-z0-9]", ""));
        this.port = FreePorts.next();
        Path journal;
        try {
            journal = Files.createTempDirectory(Path.of("target"), "journal-" + name + "-");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        properties.setProperty("kaiser.id", kaiserId);
        properties.setProperty("kaiser.instance-id", kaiserId);
        properties.setProperty("kaiser.mqtt.url", infra.mqttUrl());
        properties.setProperty("kaiser.db.url", infra.jdbcUrl(database));
        properties.setProperty("kaiser.db.user", infra.dbUser());
        properties.setProperty("kaiser.ingest.journal-dir", journal.toString());
        properties.setProperty("camel.server.port", Integer.toString(port));
        properties.setProperty("camel.server.host", "127.0.0.1");
        properties.putAll(overrides);
    }

    /**
     * A second instance of the same installation: same kaiser_id, database and broker, its own instance id,
     * port and journal. Both use the given MQTT 5 shared subscription group.
     */
    public KaiserServer(KaiserServer first, String instanceSuffix, String sharedGroup) {
        this.kaiserId = first.kaiserId;
        this.database = first.database;
        this.port = FreePorts.next();
        properties.putAll(first.properties);
        Path journal;
        try {
            journal = Files.createTempDirectory(Path.of("target"), "journal-" + instanceSuffix + "-");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        properties.setProperty("kaiser.instance-id", kaiserId + "-" + instanceSuffix);
        properties.setProperty("kaiser.ingest.journal-dir", journal.toString());
        properties.setProperty("camel.server.port", Integer.toString(port));
        properties.setProperty("kaiser.mqtt.shared-subscription-group", sharedGroup);
        first.properties.setProperty("kaiser.mqtt.shared-subscription-group", sharedGroup);
    }

    /** The properties this server runs with (for a server in a child process). */
    public Properties properties() {
        return properties;
    }

    public String instanceId() {
        return properties.getProperty("kaiser.instance-id");
    }

    /** Overrides a property for the next start. */
    public KaiserServer with(String key, String value) {
        properties.setProperty(key, value);
        return this;
    }

    public synchronized KaiserServer start() {
        Main m = new Main();
        m.setOverrideProperties(properties);
        try {
            m.start();
        } catch (Exception e) {
            throw new IllegalStateException("Kaiser did not start", e);
        }
        main = m;
        return this;
    }

    public synchronized void stop() {
        if (main != null) {
            try {
                main.stop();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            main = null;
        }
    }

    @Override
    public void close() {
        stop();
    }

    public CamelContext camel() {
        return main.getCamelContext();
    }

    public <T> T bean(String name, Class<T> type) {
        return camel().getRegistry().lookupByNameAndType(name, type);
    }

    public String kaiserId() {
        return kaiserId;
    }

    /** The broker this server talks to (the shared one unless {@code kaiser.mqtt.url} was overridden). */
    public String mqttUrl() {
        return properties.getProperty("kaiser.mqtt.url");
    }

    public String baseUrl() {
        return "http://127.0.0.1:" + port + "/api/v1";
    }

    public int port() {
        return port;
    }

    public String wsUrl() {
        return "ws://127.0.0.1:" + port + "/api/v1/ws/realtime";
    }

    public String jdbcUrl() {
        return properties.getProperty("kaiser.db.url");
    }

    /** Topic of a device of this server: {@code kaiser/<id>/esp/<esp>/<suffix>}. */
    public String topic(String espId, String suffix) {
        return "kaiser/" + kaiserId + "/esp/" + espId + "/" + suffix;
    }

    /** Runs a query against the server's database (for assertions only). */
    public List<Map<String, Object>> query(String sql) {
        try (Connection c = DriverManager.getConnection(jdbcUrl(), infra.dbUser(), "");
             Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            List<Map<String, Object>> rows = new ArrayList<>();
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                Map<String, Object> row = new LinkedHashMap<>();
                for (int i = 1; i <= n; i++) {
                    row.put(rs.getMetaData().getColumnLabel(i), rs.getObject(i));
                }
                rows.add(row);
            }
            return rows;
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    public long count(String sql) {
        Object v = query(sql).get(0).values().iterator().next();
        return ((Number) v).longValue();
    }
}
