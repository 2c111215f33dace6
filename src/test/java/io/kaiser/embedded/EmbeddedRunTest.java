package io.kaiser.embedded;

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
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import io.kaiser.support.FreePorts;
import org.eclipse.paho.mqttv5.client.MqttClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The README's run command works with nothing installed: {@code mvn -B -q -Pembedded compile exec:java} (what
 * {@code ./kaiser run} runs) starts the embedded broker and PostgreSQL and the server answers health UP, takes a
 * heartbeat over MQTT 5 on the embedded broker, and on SIGTERM the whole JVM (server, broker, database) goes away.
 *
 * <p>Runs a child Maven ({@code mvn} on the PATH, or {@code $MAVEN_HOME/bin/mvn}) in the project directory (the first
 * run downloads the embedded profile's jars);
 * the embedded profile builds in target/embedded, apart from this build. Its own data directory, ports and ids.
 */
class EmbeddedRunTest {
    private final String suffix = UUID.randomUUID().toString().replace("-", "").substring(0, 10);
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    private Process maven;

    @Test
    @Timeout(value = 150, unit = TimeUnit.SECONDS)
    void runStartsServerBrokerAndDatabaseAndStopsThemAll() throws Exception {
        Path projectDir = Path.of(System.getProperty("kaiser.project.dir", ".")).toAbsolutePath();
        Path target = projectDir.resolve("target");
        Path dataDir = target.resolve("embedded-run-" + suffix);
        Path log = target.resolve("embedded-run-" + suffix + ".log");
        int httpPort = FreePorts.next();
        int mqttPort = FreePorts.next();
        String kaiserId = "emb" + suffix;

        ProcessBuilder pb = new ProcessBuilder(List.of(mvn(), "-B", "-q", "-Pembedded", "compile", "exec:java",
                "-Dcamel.server.port=" + httpPort,
                "-Dkaiser.embedded.mqtt-port=" + mqttPort,
                "-Dkaiser.embedded.data-dir=" + dataDir,
                "-Dkaiser.id=" + kaiserId,
                "-Dkaiser.instance-id=kaiser-" + kaiserId))
                .directory(projectDir.toFile()).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().keySet().removeIf(k -> k.startsWith("KAISER_") || k.startsWith("CAMEL_"));
        long t0 = System.nanoTime();
        maven = pb.start();

        String base = "http://127.0.0.1:" + httpPort + "/api/v1";
        await("./kaiser run: health UP (log " + log + ")").atMost(Duration.ofSeconds(90))
                .pollInterval(Duration.ofMillis(250)).ignoreExceptions()
                .failFast("the embedded run exited early, see " + log, () -> !maven.isAlive())
                .untilAsserted(() -> {
                    HttpResponse<String> r = get(base + "/health");
                    assertThat(r.statusCode()).isEqualTo(200);
                    assertThat(r.body()).contains("\"status\":\"UP\"").contains("tcp://127.0.0.1:" + mqttPort);
                });
        System.out.printf("embedded run: health UP %d ms after start%n", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
        assertThat(dataDir.resolve("embedded-postgres")).isDirectory();

        String topic = "kaiser/" + kaiserId + "/esp/ESP_EMB01/system/heartbeat";
        byte[] heartbeat = "{\"ts\":1745830000,\"uptime\":10,\"heap_free\":1000,\"wifi_rssi\":-60}".getBytes(StandardCharsets.UTF_8);
        MqttClient device = new MqttClient("tcp://127.0.0.1:" + mqttPort, "test-" + kaiserId + "-esp", new MemoryPersistence());
        try {
            device.connect(new MqttConnectionOptions());
            await("ESP_EMB01 pending after a heartbeat").atMost(Duration.ofSeconds(20)).pollInterval(Duration.ofSeconds(1))
                    .untilAsserted(() -> {
                        device.publish(topic, heartbeat, 0, false);
                        assertThat(get(base + "/esp/devices/pending").body()).contains("ESP_EMB01");
                    });
        } finally {
            if (device.isConnected()) {
                device.disconnect();
            }
            device.close();
        }

        // SIGTERM (Ctrl-C / docker stop): server, broker and database stop and the JVM exits despite HiveMQ's threads
        maven.destroy();
        assertThat(maven.waitFor(60, TimeUnit.SECONDS)).as("embedded run exits after SIGTERM").isTrue();
        String output = Files.readString(log);
        assertThat(output).contains("Embedded MQTT broker stopped").contains("Embedded PostgreSQL stopped");
        assertThat(postgresProcessesFor(dataDir)).as("no PostgreSQL left running on " + dataDir).isZero();
    }

    @AfterEach
    void stop() throws Exception {
        if (maven != null && maven.isAlive()) {
            maven.destroy();
            if (!maven.waitFor(60, TimeUnit.SECONDS)) {
                maven.destroyForcibly();
            }
        }
    }

    private static long postgresProcessesFor(Path dataDir) {
        String dir = dataDir.resolve("embedded-postgres").toString();
        return ProcessHandle.allProcesses()
                .filter(p -> p.info().commandLine().map(c -> c.contains("postgres") && c.contains(dir)).orElse(false))
                .count();
    }

    private HttpResponse<String> get(String url) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(5)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static String mvn() {
        String home = System.getenv("MAVEN_HOME");
        if (home != null && new File(home, "bin/mvn").canExecute()) {
            return new File(home, "bin/mvn").getPath();
        }
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            File f = new File(dir, "mvn");
            if (f.canExecute()) {
                return f.getPath();
            }
        }
        throw new IllegalStateException("mvn not found on PATH or in MAVEN_HOME");
    }
}
