package io.kaiser.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import io.kaiser.support.FreePorts;
import org.eclipse.paho.mqttv5.client.MqttClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * mosquitto/mosquitto.conf (development) and mosquitto/mosquitto.compose.conf (docker compose) carry the same
 * settings apart from bind addresses and the persistence path, include the seed's limits, and the development file
 * starts with the installed Mosquitto (on free ports) and accepts an anonymous MQTT 5 client.
 */
class MosquittoConfigTest {
    private final Path projectDir = Path.of(System.getProperty("kaiser.project.dir", ".")).toAbsolutePath();
    private final Path dev = projectDir.resolve("mosquitto/mosquitto.conf");
    private final Path compose = projectDir.resolve("mosquitto/mosquitto.compose.conf");

    @Test
    void devAndComposeFilesDifferOnlyInBindAddressesAndPersistencePath() throws IOException {
        List<String> devSettings = settings(dev).stream()
                .map(l -> l.replaceFirst("^(listener \\d+) 127\\.0\\.0\\.1$", "$1"))
                .filter(l -> !l.startsWith("persistence_location ") && !l.startsWith("persistence_file "))
                .collect(Collectors.toList());
        List<String> composeSettings = settings(compose).stream()
                .filter(l -> !l.startsWith("persistence_location ") && !l.startsWith("persistence_file "))
                .collect(Collectors.toList());
        assertThat(composeSettings).containsExactlyElementsOf(devSettings);
        assertThat(settings(compose)).contains("persistence_location /mosquitto/data/");
    }

    @Test
    void devFileKeepsAnonymousAccessOnLoopbackAndItsLimits() throws IOException {
        List<String> s = settings(dev);
        assertThat(s).contains("per_listener_settings true", "listener 1883 127.0.0.1", "listener 9001 127.0.0.1",
                "protocol websockets", "socket_domain ipv4", "persistence true",
                "max_inflight_messages 20", "max_queued_messages 100000", "message_size_limit 262144", "max_keepalive 65535");
        assertThat(s.stream().filter(l -> l.startsWith("listener ")))
                .allMatch(l -> l.endsWith(" 127.0.0.1"));
        assertThat(s.stream().filter(l -> l.startsWith("allow_anonymous"))).hasSize(2);
    }

    @Test
    void devFileStartsWithTheInstalledMosquitto() throws Exception {
        File binary = mosquittoBinary();
        Assumptions.assumeTrue(binary != null, "no mosquitto binary on this machine: start check not run");
        String id = UUID.randomUUID().toString().substring(0, 8);
        Path work = Files.createDirectories(projectDir.resolve("target/mosquitto-conf-" + id));
        int mqttPort = FreePorts.next();
        int wsPort = FreePorts.next();
        // the same file with other ports and a persistence directory this test owns; running as root, Mosquitto
        // would switch to user "mosquitto", which cannot write under target/: stay root for the test
        String conf = Files.readString(dev)
                .replaceFirst("(?m)^listener 1883 127\\.0\\.0\\.1$", "listener " + mqttPort + " 127.0.0.1")
                .replaceFirst("(?m)^listener 9001 127\\.0\\.0\\.1$", "listener " + wsPort + " 127.0.0.1")
                .replaceFirst("(?m)^persistence_location .*$", "persistence_location " + work + "/")
                + "\nuser root\n";
        Path copy = work.resolve("mosquitto.conf");
        Files.writeString(copy, conf);
        Process mosquitto = new ProcessBuilder(binary.getPath(), "-c", copy.toString())
                .redirectErrorStream(true).redirectOutput(work.resolve("mosquitto.log").toFile()).start();
        try {
            await("mosquitto listening on " + mqttPort + " and " + wsPort).atMost(Duration.ofSeconds(10))
                    .failFast("mosquitto exited, see " + work.resolve("mosquitto.log"), () -> !mosquitto.isAlive())
                    .ignoreExceptions().until(() -> accepts(mqttPort) && accepts(wsPort));
            MqttClient client = new MqttClient("tcp://127.0.0.1:" + mqttPort, "conf-test-" + id, new MemoryPersistence());
            client.connect(new MqttConnectionOptions());
            client.publish("kaiser/conf-test/" + id, "hello".getBytes(), 1, false);
            client.disconnect();
            client.close();
        } finally {
            mosquitto.destroy();
            assertThat(mosquitto.waitFor(10, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(Files.readString(work.resolve("mosquitto.log"))).contains("Opening websockets listen socket on port " + wsPort);
        assertThat(work.resolve("kaiser-dev.db")).exists();
    }

    /** The effective lines: no comments, no blank lines. */
    private static List<String> settings(Path file) throws IOException {
        return Files.readAllLines(file).stream().map(String::strip)
                .filter(l -> !l.isEmpty() && !l.startsWith("#")).collect(Collectors.toList());
    }

    private static boolean accepts(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 500);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static File mosquittoBinary() {
        for (String dir : (System.getenv().getOrDefault("PATH", "") + File.pathSeparator + "/usr/sbin:/usr/local/sbin")
                .split(File.pathSeparator)) {
            File f = new File(dir, "mosquitto");
            if (f.canExecute()) {
                return f;
            }
        }
        return null;
    }
}
