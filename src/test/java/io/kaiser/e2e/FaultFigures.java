package io.kaiser.e2e;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The figures a fault test measured, written as key=value lines to {@code target/e2e/reliability-<name>.txt} and
 * printed, so docs/reliability.md can quote what a run on this machine saw. Nothing here is asserted on.
 */
final class FaultFigures {
    private final String name;
    private final Map<String, Object> values = new LinkedHashMap<>();

    FaultFigures(String name) {
        this.name = name;
        values.put("started_at", Instant.now().toString());
        values.put("cpus", Runtime.getRuntime().availableProcessors());
    }

    FaultFigures put(String key, Object value) {
        values.put(key, value);
        return this;
    }

    void write() {
        StringBuilder out = new StringBuilder();
        values.forEach((k, v) -> out.append(k).append('=').append(v).append('\n'));
        System.out.println("[reliability " + name + "]\n" + out);
        try {
            Path file = Path.of("target", "e2e", "reliability-" + name + ".txt");
            Files.createDirectories(file.getParent());
            Files.writeString(file, out);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static long median(List<Long> xs) {
        List<Long> s = xs.stream().sorted().toList();
        return s.isEmpty() ? -1 : s.get(s.size() / 2);
    }

    static long percentile(List<Long> xs, double p) {
        List<Long> s = xs.stream().sorted().toList();
        return s.isEmpty() ? -1 : s.get(Math.min(s.size() - 1, (int) Math.ceil(p * s.size()) - 1));
    }
}
