package io.kaiser.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A Mosquitto of the test's own on a free port, so a test can stop and start "the broker" without touching the
 * machine's shared one. Persistence is on, in a directory the broker user can write.
 */
public final class PrivateBroker implements AutoCloseable {
    private final int port;
    private final Path dir;
    private final MosquittoProcess mosquitto;

    public PrivateBroker() {
        this.port = FreePorts.next();
        try {
            dir = Files.createTempDirectory("kaiser-broker-");
            dir.toFile().setWritable(true, false);
            dir.toFile().setExecutable(true, false);
            Files.writeString(dir.resolve("mosquitto.conf"), """
                    listener %d 127.0.0.1
                    allow_anonymous true
                    persistence true
                    persistence_location %s/
                    max_queued_messages 100000
                    """.formatted(port, dir));
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        mosquitto = new MosquittoProcess(dir.resolve("mosquitto.conf"), dir.resolve("mosquitto.log"), port);
    }

    public PrivateBroker start() {
        mosquitto.start();
        return this;
    }

    /** Stops the broker (SIGTERM, like a restart); its persistence file keeps sessions. */
    public void stop() {
        mosquitto.stop();
    }

    public String url() {
        return "tcp://127.0.0.1:" + port;
    }

    @Override
    public void close() {
        stop();
    }
}
