package io.kaiser.embedded;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import com.hivemq.embedded.EmbeddedHiveMQ;
import io.kaiser.KaiserMain;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import org.apache.camel.main.Main;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Development and demo run mode: an in-process MQTT 5 broker (HiveMQ CE) on 127.0.0.1 and an embedded
 * PostgreSQL whose data lives under {@code data/embedded-postgres}, then the normal Kaiser server against them.
 * Nothing has to be installed. Not for production: the embedded PostgreSQL runs with fsync off.
 *
 * <p>Settings (system property or environment variable):
 * <ul>
 *   <li>{@code kaiser.embedded.mqtt-port} / {@code KAISER_EMBEDDED_MQTT_PORT} (default 1883; a free port is used
 *       when it is taken, e.g. by a local Mosquitto)</li>
 *   <li>{@code kaiser.embedded.mqtt-persistence} / {@code KAISER_EMBEDDED_MQTT_PERSISTENCE}: {@code file} (default,
 *       sessions and retained messages survive a restart) or {@code in-memory} (starts about 1.5 s faster)</li>
 *   <li>{@code kaiser.embedded.data-dir} / {@code KAISER_EMBEDDED_DATA_DIR} (default {@code data}): holds
 *       {@code embedded-postgres}, {@code embedded-hivemq} and {@code embedded-journal} (the ingest journal, unless
 *       {@code kaiser.ingest.journal-dir} is set)</li>
 * </ul>
 */
public final class EmbeddedKaiser {
    private static final Logger LOG = LoggerFactory.getLogger(EmbeddedKaiser.class);
    private static final String DATABASE = "kaiser";

    private EmbeddedKaiser() {
    }

    public static void main(String[] args) throws Exception {
        long t0 = System.nanoTime();
        Path dataDir = Path.of(setting("kaiser.embedded.data-dir", "data")).toAbsolutePath();
        int wantedPort = Integer.parseInt(setting("kaiser.embedded.mqtt-port", "1883"));

        EmbeddedPostgres postgres = null;
        EmbeddedHiveMQ broker = null;
        Main main = KaiserMain.newMain();
        AtomicBoolean hookStopping = new AtomicBoolean();
        CountDownLatch stopped = new CountDownLatch(1);
        // Ctrl-C / SIGTERM, also while broker and database are still starting: let Camel stop (or not start),
        // then wait until broker and database are down too.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            hookStopping.set(true);
            main.completed();
            try {
                stopped.await(60, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "kaiser-embedded-shutdown"));
        int rc = 1;
        try {
            int mqttPort = choosePort(wantedPort);
            // broker and database start side by side: each takes a second or two
            CompletableFuture<EmbeddedPostgres> pgStart = CompletableFuture.supplyAsync(() -> {
                try {
                    return startPostgres(dataDir.resolve("embedded-postgres"));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            try {
                broker = startBroker(dataDir, mqttPort);
            } finally {
                try {
                    postgres = pgStart.join();
                } catch (CompletionException e) {
                    if (broker != null) {
                        throw e;
                    }
                }
            }
            String jdbcUrl = createDatabase(postgres);

            System.setProperty("kaiser.mqtt.url", "tcp://127.0.0.1:" + mqttPort);
            System.setProperty("kaiser.db.url", jdbcUrl);
            System.setProperty("kaiser.db.user", "postgres");
            System.setProperty("kaiser.db.password", "");
            // the ingest journal belongs to this database: keep it apart from an external-mode journal in data/journal
            if (setting("kaiser.ingest.journal-dir", null) == null) {
                System.setProperty("kaiser.ingest.journal-dir", dataDir.resolve("embedded-journal").toString());
            }
            LOG.info("Embedded services up in {} ms: MQTT tcp://127.0.0.1:{}, PostgreSQL {}",
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), mqttPort, jdbcUrl);

            if (!hookStopping.get()) {
                rc = main.run(args);
            }
        } catch (Throwable e) {
            LOG.error("Embedded Kaiser failed: {}", e.toString(), e);
        } finally {
            stopBroker(broker);
            stopPostgres(postgres);
            stopped.countDown();
        }
        // HiveMQ leaves non-daemon threads behind; exit explicitly unless the JVM is already shutting down
        // (System.exit inside a shutdown would block forever).
        if (!hookStopping.get()) {
            System.exit(rc);
        }
    }

    /** A system property, else the environment variable of the same name (upper case, dots and dashes as _). */
    static String setting(String key, String defaultValue) {
        String v = System.getProperty(key);
        if (v == null || v.isBlank()) {
            v = System.getenv(key.toUpperCase().replace('.', '_').replace('-', '_'));
        }
        return v == null || v.isBlank() ? defaultValue : v.trim();
    }

    static int choosePort(int wanted) throws IOException {
        if (wanted > 0 && portFree(wanted)) {
            return wanted;
        }
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            int port = s.getLocalPort();
            LOG.warn("MQTT port {} on 127.0.0.1 is taken (a local Mosquitto?): the embedded broker uses port {} instead. "
                    + "Point devices at that port or set KAISER_EMBEDDED_MQTT_PORT.", wanted, port);
            return port;
        }
    }

    private static boolean portFree(int port) {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(false);
            s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static EmbeddedHiveMQ startBroker(Path dataDir, int port) throws Exception {
        long t0 = System.nanoTime();
        String persistence = setting("kaiser.embedded.mqtt-persistence", "file");
        if (!persistence.equals("file") && !persistence.equals("in-memory")) {
            throw new IllegalArgumentException("kaiser.embedded.mqtt-persistence must be file or in-memory, not " + persistence);
        }
        Path home = dataDir.resolve("embedded-hivemq");
        Path conf = Files.createDirectories(home.resolve("conf"));
        Path data = Files.createDirectories(home.resolve("data"));
        Path extensions = Files.createDirectories(home.resolve("extensions"));
        String xml = """
                <?xml version="1.0"?>
                <!-- written by io.kaiser.embedded.EmbeddedKaiser at every start -->
                <hivemq>
                    <listeners>
                        <tcp-listener>
                            <port>%d</port>
                            <bind-address>127.0.0.1</bind-address>
                        </tcp-listener>
                    </listeners>
                    <mqtt>
                        <packets><max-packet-size>262144</max-packet-size></packets>
                    </mqtt>
                    <persistence><mode>%s</mode></persistence>
                    <anonymous-usage-statistics><enabled>false</enabled></anonymous-usage-statistics>
                </hivemq>
                """.formatted(port, persistence);
        Files.writeString(conf.resolve("config.xml"), xml, StandardCharsets.UTF_8);
        EmbeddedHiveMQ broker = EmbeddedHiveMQ.builder()
                .withConfigurationFolder(conf)
                .withDataFolder(data)
                .withExtensionsFolder(extensions)
                .withoutLoggingBootstrap()
                .build();
        broker.start().get(60, TimeUnit.SECONDS);
        LOG.info("Embedded MQTT 5 broker (HiveMQ CE) listening on 127.0.0.1:{} after {} ms, {} persistence in {}", port,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0), persistence, data);
        return broker;
    }

    private static EmbeddedPostgres startPostgres(Path dir) throws IOException {
        Files.createDirectories(dir.getParent());
        EmbeddedPostgres pg = EmbeddedPostgres.builder()
                .setDataDirectory(dir)
                .setCleanDataDirectory(false)
                .setRegisterShutdownHook(false)
                .setServerConfig("listen_addresses", "127.0.0.1")
                .start();
        LOG.info("Embedded PostgreSQL on 127.0.0.1:{}, data in {}", pg.getPort(), dir);
        return pg;
    }

    private static String createDatabase(EmbeddedPostgres pg) throws Exception {
        try (Connection c = pg.getPostgresDatabase().getConnection(); Statement s = c.createStatement()) {
            boolean exists;
            try (ResultSet rs = s.executeQuery("SELECT 1 FROM pg_database WHERE datname = '" + DATABASE + "'")) {
                exists = rs.next();
            }
            if (!exists) {
                s.execute("CREATE DATABASE " + DATABASE);
                LOG.info("Created database {}", DATABASE);
            }
        }
        return "jdbc:postgresql://127.0.0.1:" + pg.getPort() + "/" + DATABASE;
    }

    private static void stopBroker(EmbeddedHiveMQ broker) {
        if (broker == null) {
            return;
        }
        try {
            broker.stop().get(30, TimeUnit.SECONDS);
            LOG.info("Embedded MQTT broker stopped");
        } catch (Exception e) {
            LOG.warn("Embedded MQTT broker did not stop cleanly: {}", e.toString());
        }
    }

    private static void stopPostgres(EmbeddedPostgres pg) {
        if (pg == null) {
            return;
        }
        try {
            pg.close();
            LOG.info("Embedded PostgreSQL stopped");
        } catch (Exception e) {
            LOG.warn("Embedded PostgreSQL did not stop cleanly: {}", e.toString());
        }
    }
}
