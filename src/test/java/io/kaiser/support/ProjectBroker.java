package io.kaiser.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Mosquitto run with the project's own {@code mosquitto/mosquitto.conf}: every setting as shipped, only the two
 * listener ports moved to free ports and persistence moved to a directory of the test's, so the end-to-end suite
 * exercises the configuration users run and can restart or crash "the broker" without touching the machine's.
 */
public final class ProjectBroker implements AutoCloseable {
    private static final Path PROJECT_CONFIG = Path.of("mosquitto/mosquitto.conf");

    private final int port = FreePorts.next();
    private final int wsPort = FreePorts.next();
    private final Path dir;
    private final MosquittoProcess mosquitto;

    public ProjectBroker() {
        try {
            dir = Files.createTempDirectory("kaiser-e2e-broker-");
            dir.toFile().setWritable(true, false);
            dir.toFile().setExecutable(true, false);
            String config = Files.readString(PROJECT_CONFIG)
                    .replace("listener 1883 127.0.0.1", "listener " + port + " 127.0.0.1")
                    .replace("listener 9001 127.0.0.1", "listener " + wsPort + " 127.0.0.1")
                    .replace("persistence_location /var/lib/mosquitto/", "persistence_location " + dir + "/");
            if (!config.contains("listener " + port) || !config.contains("persistence_location " + dir)) {
                throw new IllegalStateException("mosquitto/mosquitto.conf changed shape: update ProjectBroker");
            }
            Files.writeString(dir.resolve("mosquitto.conf"), config);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        mosquitto = new MosquittoProcess(dir.resolve("mosquitto.conf"), dir.resolve("mosquitto.log"), port);
    }

    public ProjectBroker start() {
        mosquitto.start();
        return this;
    }

    /** A clean broker restart: SIGTERM, Mosquitto saves sessions and queued messages to its persistence file. */
    public void stop() {
        mosquitto.stop();
    }

    /** A broker crash: SIGKILL, whatever was not autosaved is gone. */
    public void kill() {
        mosquitto.kill();
    }

    public void restart() {
        stop();
        start();
    }

    public boolean running() {
        return mosquitto.running();
    }

    public int port() {
        return port;
    }

    /** For the Java clients and the server: {@code tcp://127.0.0.1:<port>}. */
    public String url() {
        return "tcp://127.0.0.1:" + port;
    }

    /** For the firmware's virtual devices: {@code mqtt://127.0.0.1:<port>}. */
    public String deviceUrl() {
        return "mqtt://127.0.0.1:" + port;
    }

    public Path log() {
        return dir.resolve("mosquitto.log");
    }

    @Override
    public void close() {
        kill();
    }
}
