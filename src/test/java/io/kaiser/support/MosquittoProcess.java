package io.kaiser.support;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.awaitility.Awaitility.await;

/** One {@code mosquitto -c <config>} process of a test's own: started, awaited on its port, stopped or killed. */
final class MosquittoProcess {
    private final Path config;
    private final Path log;
    private final int port;
    private Process process;

    MosquittoProcess(Path config, Path log, int port) {
        this.config = config;
        this.log = log;
        this.port = port;
    }

    void start() {
        try {
            process = new ProcessBuilder("mosquitto", "-c", config.toString())
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        } catch (IOException e) {
            throw new IllegalStateException("mosquitto is not installed", e);
        }
        Process started = process;
        await().atMost(Duration.ofSeconds(10)).until(() -> {
            if (!started.isAlive()) {
                throw new IllegalStateException("mosquitto exited with " + started.exitValue() + " before listening on "
                        + port + "; its log:\n" + logTail());
            }
            return listening();
        });
    }

    private String logTail() {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** SIGTERM: Mosquitto saves its persistence file on the way out. */
    void stop() {
        end(false);
    }

    /** SIGKILL: whatever was not autosaved is gone. */
    void kill() {
        end(true);
    }

    private void end(boolean kill) {
        if (process == null) {
            return;
        }
        if (kill) {
            process.destroyForcibly();
        } else {
            process.destroy();
        }
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        process = null;
        await().atMost(Duration.ofSeconds(10)).until(() -> !listening());
    }

    boolean running() {
        return process != null && process.isAlive();
    }

    private boolean listening() {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 300);
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
