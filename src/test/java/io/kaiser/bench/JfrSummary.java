package io.kaiser.bench;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordedStackTrace;
import jdk.jfr.consumer.RecordingFile;

/**
 * Summarizes the server's JFR recording of an ingest run ({@code bench/ingest --profile true} writes
 * target/bench/ingest.jfr): execution samples per thread, top self frames, and top inclusive Kaiser / Camel /
 * driver / Paho / journal methods. Run: {@code bench/profile} (runs the ingest with JFR, then this).
 */
public final class JfrSummary {
    public static void main(String[] argv) throws Exception {
        Map<String, String> a = Bench.args(argv);
        Path file = Path.of(a.getOrDefault("jfr", Bench.WORK.resolve(a.containsKey("callers") ? "command.jfr" : "ingest.jfr").toString()));
        String command = a.getOrDefault("command", "bench/profile");
        int top = Bench.intArg(a, "top", 15);
        List<RecordedEvent> events = RecordingFile.readAllEvents(file);
        // only the measured interval (startup and warm-up left out): the load phase, the drain phase, or both
        long from = 0;
        long to = Long.MAX_VALUE;
        String phase = a.getOrDefault("phase", "all");
        if (a.containsKey("callers")) {
            // a command round-trip recording: the REST part of one caller level (lines "callers from to")
            for (String line : java.nio.file.Files.readAllLines(Bench.WORK.resolve("command-window.txt"))) {
                String[] w = line.trim().split(" ");
                if (w[0].equals(a.get("callers"))) {
                    from = Long.parseLong(w[1]);
                    to = Long.parseLong(w[2]);
                }
            }
        }
        Path window = Bench.WORK.resolve("ingest-window.txt");
        if (!a.containsKey("callers") && java.nio.file.Files.exists(window)) {
            String[] w = java.nio.file.Files.readString(window).trim().split(" ");
            from = Long.parseLong(phase.equals("drain") ? w[1] : w[0]);
            to = Long.parseLong(phase.equals("load") ? w[1] : w[2]);
        }
        final long lo = from;
        final long hi = to;
        events = events.stream().filter(e -> e.getStartTime().toEpochMilli() >= lo && e.getStartTime().toEpochMilli() <= hi).toList();
        Map<String, Integer> threads = new HashMap<>();
        Map<String, Integer> self = new HashMap<>();
        Map<String, Integer> inclusive = new HashMap<>();
        Map<String, Integer> selfPackage = new HashMap<>();
        int samples = 0;
        long gcPauseMs = 0;
        int gcs = 0;
        for (RecordedEvent e : events) {
            String type = e.getEventType().getName();
            if (type.equals("jdk.GarbageCollection")) {
                gcs++;
                gcPauseMs += e.getDuration("sumOfPauses").toMillis();
            }
            if (!type.equals("jdk.ExecutionSample")) {
                continue;
            }
            samples++;
            String thread = e.getThread("sampledThread") == null ? "?" : e.getThread("sampledThread").getJavaName();
            threads.merge(thread.replaceAll("[-#]?\\d+$", "-N").replaceAll("\\d+", "N"), 1, Integer::sum);
            RecordedStackTrace st = e.getStackTrace();
            if (st == null || st.getFrames().isEmpty()) {
                continue;
            }
            List<RecordedFrame> frames = st.getFrames();
            String first = name(frames.get(0));
            self.merge(first, 1, Integer::sum);
            selfPackage.merge(pkg(frames.get(0)), 1, Integer::sum);
            Set<String> seen = new HashSet<>();
            for (RecordedFrame f : frames) {
                String n = name(f);
                String cls = f.getMethod().getType().getName();
                if ((cls.startsWith("io.kaiser") || cls.startsWith("org.postgresql") || cls.startsWith("org.eclipse.paho")
                        || cls.startsWith("com.fasterxml") || cls.startsWith("org.apache.camel.component") || cls.startsWith("java.nio.channels")
                        || cls.startsWith("sun.nio.ch.FileChannelImpl")) && seen.add(n)) {
                    inclusive.merge(n, 1, Integer::sum);
                }
            }
        }
        final int total = samples;
        StringBuilder body = new StringBuilder();
        String during = a.containsKey("callers")
                ? "the command round trip's REST calls with " + a.get("callers") + " concurrent callers (`bench/command-latency --profile true`)"
                : "the ingest run in the section *Ingest under JFR* above, " + (phase.equals("load") ? "while the devices published (load phase only)"
                        : phase.equals("drain") ? "after the load, while the server worked off its backlog (drain phase only)"
                        : "from the first publish until the last row was stored");
        body.append(String.format("JFR (`settings=profile`, ~20 ms sampling of running Java threads) of the Kaiser server process during"
                + " %s: %d execution samples; %d GCs with %d ms of pauses in total.%n%n", during, samples, gcs, gcPauseMs));
        body.append("Samples per thread (numbers folded):\n\n").append(table("thread", threads, total, top)).append('\n');
        body.append("Top self frames (where the CPU is):\n\n").append(table("frame", self, total, top)).append('\n');
        body.append("Self samples by package:\n\n").append(table("package", selfPackage, total, 10)).append('\n');
        body.append("Top inclusive frames of Kaiser, Camel components, the PostgreSQL driver, Jackson, Paho and file channels"
                + " (share of samples with the method anywhere on the stack):\n\n").append(table("method", inclusive, total, top + 10));
        Bench.publish(a.getOrDefault("section", "profile"), a.getOrDefault("title", "Ingest profile (JFR)"), command, body.toString());
    }

    private static String name(RecordedFrame f) {
        return f.getMethod().getType().getName() + "." + f.getMethod().getName();
    }

    private static String pkg(RecordedFrame f) {
        String c = f.getMethod().getType().getName();
        String[] parts = c.split("\\.");
        return String.join(".", java.util.Arrays.copyOf(parts, Math.min(3, parts.length - 1)));
    }

    private static Bench.Table table(String what, Map<String, Integer> counts, int total, int top) {
        Bench.Table t = new Bench.Table(what, "samples", "%");
        counts.entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed()).limit(top)
                .forEach(e -> t.row("`" + e.getKey() + "`", e.getValue(), Bench.f1(100.0 * e.getValue() / total)));
        return t;
    }
}
