package io.kaiser.support;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import static org.awaitility.Awaitility.await;

/**
 * A Mosquitto of the test's own on a free port, so a test can stop and start "the broker" without touching the
 * machine's shared one. Persistence is on, in a directory the broker user can write.
 */
public final class PrivateBroker implements AutoCloseable {
    private final int port;
    private final Path dir;
    private Process process;

    public PrivateBroker() {
        this.port = KaiserServer.freePort();
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
    }

    public PrivateBroker start() {
        try {
            process = new ProcessBuilder("mosquitto", "-c", dir.resolve("mosquitto.conf").toString())
                    .redirectErrorStream(true).redirectOutput(dir.resolve("mosquitto.log").toFile()).start();
        } catch (IOException e) {
            throw new IllegalStateException("mosquitto is not installed", e);
        }
        await().atMost(Duration.ofSeconds(10)).until(this::listening);
        return this;
    }

    /** Stops the broker the hard way (like a crash or a network cut); its persistence file keeps sessions. */
    public void stop() {
        if (process != null) {
            process.destroy();
            try {
                process.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            process = null;
        }
        await().atMost(Duration.ofSeconds(10)).until(() -> !listening());
    }

    private boolean listening() {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 300);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    public String url() {
        return "tcp://127.0.0.1:" + port;
    }

    @Override
    public void close() {
        stop();
    }
}
