package io.kaiser.support;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

import static org.awaitility.Awaitility.await;

/**
 * A {@code kaiser-vdev} process: the firmware's portable core run as N virtual devices against a broker. Its JSON
 * stats lines (one per {@code --stats-s}) are parsed as they come; every output line also goes to
 * {@code target/e2e/<name>.log}.
 */
public final class VirtualDevices implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String name;
    private final Process process;
    private final List<Map<String, Object>> stats = new CopyOnWriteArrayList<>();
    private final List<String> lines = new CopyOnWriteArrayList<>();

    private VirtualDevices(String name, List<String> command) {
        this.name = name;
        try {
            Path log = Path.of("target", "e2e", name + ".log");
            Files.createDirectories(log.getParent());
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
            PrintWriter out = new PrintWriter(Files.newBufferedWriter(log, StandardCharsets.UTF_8), true);
            Thread reader = new Thread(() -> read(out), "vdev-" + name);
            reader.setDaemon(true);
            reader.start();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Starts {@code count} devices named {@code prefix0001..} for the given kaiser_id on the broker at
     * {@code deviceUrl} (mqtt://host:port); {@code options} are further kaiser-vdev flags.
     */
    public static VirtualDevices start(String kaiserId, String deviceUrl, String prefix, int count, String... options) {
        List<String> cmd = new ArrayList<>(List.of(Firmware.vdev().toString(), "--count", Integer.toString(count),
                "--prefix", prefix, "--kaiser-id", kaiserId, "--url", deviceUrl, "--stats-s", "1"));
        cmd.addAll(List.of(options));
        return new VirtualDevices(prefix + "-" + kaiserId, cmd);
    }

    private void read(PrintWriter out) {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                out.println(line);
                lines.add(line);
                if (line.startsWith("{\"t\":")) {
                    stats.add(JSON.readValue(line, new TypeReference<Map<String, Object>>() { }));
                }
            }
        } catch (IOException e) {
            // the process is gone
        } finally {
            out.close();
        }
    }

    /** The newest stats line (counters are totals over all devices of this process since it started). */
    public Map<String, Object> stats() {
        return stats.isEmpty() ? Map.of() : stats.get(stats.size() - 1);
    }

    public long stat(String key) {
        Object v = stats().get(key);
        return v == null ? 0 : ((Number) v).longValue();
    }

    /** Every stats line so far, oldest first. */
    public List<Map<String, Object>> history() {
        return List.copyOf(stats);
    }

    public List<String> lines() {
        return List.copyOf(lines);
    }

    public void awaitStats(Predicate<Map<String, Object>> condition, Duration timeout) {
        await().atMost(timeout).until(() -> condition.test(stats()));
    }

    public boolean alive() {
        return process.isAlive();
    }

    public long pid() {
        return process.pid();
    }

    /** SIGTERM: the devices disconnect cleanly and the process prints its final stats line. */
    public void stop() {
        process.destroy();
        waitForExit();
    }

    /** SIGKILL: every device vanishes without a DISCONNECT (the broker publishes their wills). */
    public void kill() {
        process.destroyForcibly();
        waitForExit();
    }

    private void waitForExit() {
        try {
            process.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            stop();
        }
    }

    @Override
    public String toString() {
        return "vdev " + name;
    }
}
