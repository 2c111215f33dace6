package io.kaiser.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import io.kaiser.support.FreePorts;
import org.eclipse.paho.mqttv5.client.MqttClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The project's {@code routes/} and {@code application.properties} run unchanged under the Camel CLI
 * ({@code camel run}, Camel JBang 4.17.0): started as a child process exactly like {@code ./kaiser camel run},
 * against the local Mosquitto and PostgreSQL, it answers health UP and registers a device from a heartbeat.
 *
 * <p>Needs a broker on {@code KAISER_TEST_MQTT_URL} (default tcp://127.0.0.1:1883) and PostgreSQL reachable as
 * {@code KAISER_TEST_PG_ADMIN_URL} (default jdbc:postgresql://127.0.0.1:5432/postgres, user postgres).
 */
class CamelCliRunTest {
    private static final String MQTT_URL = env("KAISER_TEST_MQTT_URL", "tcp://127.0.0.1:1883");
    private static final String PG_ADMIN_URL = env("KAISER_TEST_PG_ADMIN_URL", "jdbc:postgresql://127.0.0.1:5432/postgres");
    private static final String PG_USER = env("KAISER_TEST_PG_USER", "postgres");
    private static final String PG_PASSWORD = env("KAISER_TEST_PG_PASSWORD", "");

    private final String suffix = UUID.randomUUID().toString().replace("-", "").substring(0, 10);
    private final String kaiserId = "cli" + suffix;
    private final String database = "kaiser_cli_" + suffix;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    private Process camel;
    private boolean databaseCreated;

    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void camelRunStartsKaiserFromRoutesAndProperties() throws Exception {
        Path projectDir = Path.of(System.getProperty("kaiser.project.dir", ".")).toAbsolutePath();
        Path target = projectDir.resolve("target");
        Path journal = target.resolve("camel-cli-journal-" + suffix);
        Path log = target.resolve("camel-cli-run-" + suffix + ".log");
        int port = FreePorts.next();
        createDatabase();

        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-cp");
        cmd.add(testClassPath());
        cmd.add(CamelCli.class.getName());
        cmd.add("run");
        try (Stream<Path> routes = Files.list(projectDir.resolve("routes"))) {
            routes.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".camel.yaml")).sorted()
                    .forEach(n -> cmd.add("routes/" + n));
        }
        cmd.add("application.properties");
        cmd.add("--property=camel.server.port=" + port);
        cmd.add("--property=kaiser.id=" + kaiserId);
        cmd.add("--property=kaiser.instance-id=kaiser-" + kaiserId);
        cmd.add("--property=kaiser.mqtt.url=" + MQTT_URL);
        cmd.add("--property=kaiser.db.url=" + PG_ADMIN_URL.substring(0, PG_ADMIN_URL.lastIndexOf('/') + 1) + database);
        cmd.add("--property=kaiser.db.user=" + PG_USER);
        cmd.add("--property=kaiser.db.password=" + PG_PASSWORD);
        cmd.add("--property=kaiser.ingest.journal-dir=" + journal);

        ProcessBuilder pb = new ProcessBuilder(cmd).directory(projectDir.toFile())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        // the command line wins anyway; keep a developer's KAISER_* environment out of the child
        pb.environment().keySet().removeIf(k -> k.startsWith("KAISER_") || k.startsWith("CAMEL_"));
        camel = pb.start();

        String base = "http://127.0.0.1:" + port + "/api/v1";
        // like `./kaiser camel run`: project directory as working directory (application.properties names
        // routes/ relatively), where camel run also keeps its .camel-jbang/ work files (git-ignored)
        await("camel run: GET /health says UP (log " + log + ")").atMost(Duration.ofSeconds(60))
                .pollInterval(Duration.ofMillis(500)).ignoreExceptions()
                .failFast("camel run exited early, see " + log, () -> !camel.isAlive())
                .untilAsserted(() -> {
                    HttpResponse<String> r = get(base + "/health");
                    assertThat(r.statusCode()).isEqualTo(200);
                    assertThat(r.body()).contains("\"status\":\"UP\"");
                });

        String topic = "kaiser/" + kaiserId + "/esp/ESP_CLI01/system/heartbeat";
        byte[] heartbeat = "{\"ts\":1745830000,\"uptime\":10,\"heap_free\":1000,\"wifi_rssi\":-60}".getBytes(StandardCharsets.UTF_8);
        MqttClient device = new MqttClient(MQTT_URL, "test-" + kaiserId + "-esp", new MemoryPersistence());
        try {
            MqttConnectionOptions o = new MqttConnectionOptions();
            o.setCleanStart(true);
            device.connect(o);
            // heartbeats are QoS 0: resend until the server (subscribed once health is UP) has seen one
            await("ESP_CLI01 pending after a heartbeat").atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofSeconds(1))
                    .untilAsserted(() -> {
                        device.publish(topic, heartbeat, 0, false);
                        HttpResponse<String> r = get(base + "/esp/devices/pending");
                        assertThat(r.statusCode()).isEqualTo(200);
                        assertThat(r.body()).contains("ESP_CLI01");
                    });
        } finally {
            if (device.isConnected()) {
                device.disconnect();
            }
            device.close();
        }
    }

    @AfterEach
    void stop() throws Exception {
        if (camel != null) {
            camel.destroy();
            if (!camel.waitFor(20, TimeUnit.SECONDS)) {
                camel.destroyForcibly();
                camel.waitFor(10, TimeUnit.SECONDS);
            }
        }
        if (databaseCreated) {
            try (Connection c = DriverManager.getConnection(PG_ADMIN_URL, PG_USER, PG_PASSWORD); Statement s = c.createStatement()) {
                s.execute("DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
            }
        }
    }

    private HttpResponse<String> get(String url) throws IOException, InterruptedException {
        HttpRequest request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5))
                .header("Accept", "application/json").GET().build();
        return http.send(request, HttpResponse.BodyHandlers.ofString());
    }

    private void createDatabase() throws Exception {
        try (Connection c = DriverManager.getConnection(PG_ADMIN_URL, PG_USER, PG_PASSWORD); Statement s = c.createStatement()) {
            s.execute("CREATE DATABASE " + database);
            databaseCreated = true;
        }
    }

    /** Surefire runs tests from a manifest-only jar; it publishes the real class path separately. */
    private static String testClassPath() {
        String cp = System.getProperty("surefire.test.class.path");
        if (cp == null || cp.isBlank()) {
            cp = System.getProperty("java.class.path");
        }
        assertThat(cp).as("test class path").contains(File.pathSeparator);
        return cp;
    }

    private static String env(String name, String defaultValue) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? defaultValue : v;
    }
}
