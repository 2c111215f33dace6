package io.kaiser.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.List;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The benchmarks' smoke variant (what {@code bench/smoke} runs): the ingest benchmark (broker drain, JDBC batch
 * and a Kaiser server process; no Node-RED) and the command round trip with tiny parameters. They must produce
 * their tables with nonzero figures. Writes target/bench/*-smoke.md, never docs/benchmarks.md. Seconds, not minutes.
 */
class BenchSmokeTest {
    @Test
    @Timeout(120)
    void ingestSmokeProducesNonzeroFigures() throws Exception {
        requireServices();
        List<IngestBench.Result> rows = IngestBench.run(new String[] {"--devices", "2", "--seconds", "1", "--nodered", "false", "--phases", "drain,jdbc,kaiser", "--paced-rate", "0",
                "--section", "ingest-smoke", "--title", "Ingest (smoke)", "--command", "BenchSmokeTest"});
        assertEquals(3, rows.size(), "drain, JDBC, Kaiser");
        for (IngestBench.Result r : rows) {
            assertTrue(r.rate() > 0 && r.delivered() > 0, r.toString());
        }
        IngestBench.Result kaiser = rows.get(2);
        assertEquals(kaiser.sent(), kaiser.delivered(), "Kaiser stores every reading it was sent");
        assertTrue(kaiser.latency()[4] > 0, "latency samples");
        String md = Files.readString(Bench.WORK.resolve("ingest-smoke.md"));
        assertTrue(md.contains("| Kaiser") && md.contains("| Kaiser / broker drain |"), md);
    }

    @Test
    @Timeout(90)
    void commandRoundTripSmokeProducesNonzeroFigures() throws Exception {
        requireServices();
        List<double[]> medians = CommandRoundTrip.run(new String[] {"--n", "20", "--callers", "1,2", "--devices", "2", "--warmup", "40", "--warmup-max-s", "0",
                "--section", "command-latency-smoke", "--command", "BenchSmokeTest"});
        assertEquals(2, medians.size());
        for (double[] m : medians) {
            assertTrue(m[0] > 0 && m[1] > 0, java.util.Arrays.toString(m));
        }
        assertTrue(Files.readString(Bench.WORK.resolve("command-latency-smoke.md")).contains("| 2 | 20 |"));
    }

    /** The benchmarks run their own Mosquitto (the binary) and need the local PostgreSQL; say so when absent. */
    private static void requireServices() {
        boolean mosquitto = java.util.stream.Stream.of(System.getenv().getOrDefault("PATH", "").split(":"))
                .anyMatch(d -> Files.isExecutable(java.nio.file.Path.of(d, "mosquitto")));
        Assumptions.assumeTrue(mosquitto, "bench smoke needs the mosquitto binary on PATH (Debian package mosquitto)");
        boolean pg;
        try (java.sql.Connection c = Bench.connect("postgres")) {
            pg = c.isValid(2);
        } catch (java.sql.SQLException e) {
            pg = false;
        }
        Assumptions.assumeTrue(pg, "bench smoke needs PostgreSQL at " + Bench.jdbcUrl("postgres") + " (user " + Bench.PG_USER + ", trust)");
    }
}
