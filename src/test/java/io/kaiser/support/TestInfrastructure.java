package io.kaiser.support;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.util.UUID;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where the tests find a real MQTT broker and a real PostgreSQL, in this order:
 * <ol>
 *   <li>{@code KAISER_TEST_MQTT_URL} / {@code KAISER_TEST_DB_HOST}+{@code KAISER_TEST_DB_PORT} from the environment;</li>
 *   <li>the services of this machine on 127.0.0.1:1883 and 127.0.0.1:5432 (CI and the developers' machines);</li>
 *   <li>Testcontainers (Mosquitto 2, PostgreSQL 16) when a Docker engine answers;</li>
 *   <li>embedded: HiveMQ CE and zonky PostgreSQL in this JVM, as a last resort.</li>
 * </ol>
 * Every test class gets its own database; isolation on the shared broker comes from a unique kaiser_id.
 */
public final class TestInfrastructure {
    private static final Logger LOG = LoggerFactory.getLogger(TestInfrastructure.class);
    private static TestInfrastructure instance;

    private final String mqttUrl;
    private final String dbHost;
    private final int dbPort;
    private final String dbUser;
    private final String source;

    private TestInfrastructure(String mqttUrl, String dbHost, int dbPort, String dbUser, String source) {
        this.mqttUrl = mqttUrl;
        this.dbHost = dbHost;
        this.dbPort = dbPort;
        this.dbUser = dbUser;
        this.source = source;
    }

    public static synchronized TestInfrastructure get() {
        if (instance == null) {
            instance = detect();
            LOG.info("Test infrastructure: {} (mqtt {}, postgres {}:{})", instance.source, instance.mqttUrl, instance.dbHost, instance.dbPort);
        }
        return instance;
    }

    private static TestInfrastructure detect() {
        String envMqtt = System.getenv("KAISER_TEST_MQTT_URL");
        String envDbHost = System.getenv("KAISER_TEST_DB_HOST");
        if (envMqtt != null && envDbHost != null) {
            String port = System.getenv().getOrDefault("KAISER_TEST_DB_PORT", "5432");
            return new TestInfrastructure(envMqtt, envDbHost, Integer.parseInt(port),
                    System.getenv().getOrDefault("KAISER_TEST_DB_USER", "postgres"), "environment");
        }
        if (reachable("127.0.0.1", 1883) && reachable("127.0.0.1", 5432)) {
            return new TestInfrastructure("tcp://127.0.0.1:1883", "127.0.0.1", 5432, "postgres", "local services");
        }
        if (dockerAvailable()) {
            return Containers.start();
        }
        return Embedded.start();
    }

    private static boolean dockerAvailable() {
        try {
            return org.testcontainers.DockerClientFactory.instance().isDockerAvailable();
        } catch (Throwable t) {
            return false;
        }
    }

    static boolean reachable(String host, int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), 500);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    public String mqttUrl() {
        return mqttUrl;
    }

    public String dbUser() {
        return dbUser;
    }

    public String jdbcUrl(String database) {
        return "jdbc:postgresql://" + dbHost + ":" + dbPort + "/" + database;
    }

    /** Creates a fresh, empty database and returns its name. */
    public String createDatabase(String prefix) {
        String name = (prefix + "_" + UUID.randomUUID().toString().replace("-", "").substring(0, 10)).toLowerCase();
        try (Connection c = DriverManager.getConnection(jdbcUrl("postgres"), dbUser, "");
             Statement s = c.createStatement()) {
            s.execute("CREATE DATABASE " + name);
        } catch (Exception e) {
            throw new IllegalStateException("cannot create test database " + name, e);
        }
        return name;
    }

    /** Testcontainers variant, used only where a Docker engine runs. */
    static final class Containers {
        static TestInfrastructure start() {
            var mqtt = new org.testcontainers.containers.GenericContainer<>("eclipse-mosquitto:2")
                    .withExposedPorts(1883)
                    .withCommand("mosquitto", "-c", "/mosquitto-no-auth.conf");
            mqtt.start();
            var pg = new org.testcontainers.containers.PostgreSQLContainer<>("postgres:16")
                    .withUsername("postgres").withPassword("").withEnv("POSTGRES_HOST_AUTH_METHOD", "trust");
            pg.start();
            return new TestInfrastructure("tcp://" + mqtt.getHost() + ":" + mqtt.getMappedPort(1883), pg.getHost(),
                    pg.getMappedPort(5432), "postgres", "testcontainers");
        }
    }

    /** Embedded variant: HiveMQ CE and zonky PostgreSQL inside the test JVM. */
    static final class Embedded {
        static TestInfrastructure start() {
            try {
                var pg = io.zonky.test.db.postgres.embedded.EmbeddedPostgres.builder().start();
                int mqttPort = EmbeddedBroker.start();
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                    try {
                        pg.close();
                    } catch (IOException ignored) {
                        // shutting down
                    }
                }));
                return new TestInfrastructure("tcp://127.0.0.1:" + mqttPort, "127.0.0.1", pg.getPort(), "postgres", "embedded");
            } catch (IOException e) {
                throw new IllegalStateException("no broker or database for the tests: install Mosquitto and PostgreSQL, or Docker", e);
            }
        }
    }
}
