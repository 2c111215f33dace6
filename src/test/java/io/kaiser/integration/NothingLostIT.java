package io.kaiser.integration;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.MqttTestClient;
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Contract decision 2: no QoS >= 1 message is lost when the database or the server goes away, and none is
 * stored twice. The database outage uses a PostgreSQL of the test's own (a real server binary, started and
 * stopped here) so that stopping it harms nobody else on the machine.
 */
class NothingLostIT {

    @Test
    void should_store_every_message_exactly_once_and_in_order_after_postgres_was_down_for_30_seconds() throws Exception {
        Path data = Files.createTempDirectory(Path.of("target"), "outage-pg-");
        EmbeddedPostgres pg = EmbeddedPostgres.builder().setDataDirectory(data).setCleanDataDirectory(false).start();
        int pgPort = pg.getPort();
        KaiserServer server = new KaiserServer("outage", Map.of(
                "kaiser.registration.auto-approve", "true",
                "kaiser.db.url", pg.getJdbcUrl("postgres", "postgres"),
                "kaiser.db.connection-timeout-ms", "1000")).start();
        ScheduledExecutorService stream = Executors.newSingleThreadScheduledExecutor();
        try (MqttTestClient device = new MqttTestClient(server.mqttUrl())) {
            await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
            device.publish(server.topic("ESP_OUT01", "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}", 0);
            await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/esp/devices/ESP_OUT01").status() == 200);

            // a steady stream of 20 readings per second, QoS 1, for the whole test
            AtomicInteger sent = new AtomicInteger();
            stream.scheduleAtFixedRate(() -> {
                int i = sent.get();
                device.publish(server.topic("ESP_OUT01", "sensor/4/data"), "{\"ts\":" + (1795000000L + i)
                        + ",\"esp_id\":\"ESP_OUT01\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":" + (300 + i % 50) + ",\"seq\":" + i + "}", 1);
                sent.incrementAndGet();
            }, 0, 50, TimeUnit.MILLISECONDS);
            await().atMost(Duration.ofSeconds(10)).until(() -> sent.get() >= 60);

            pg.close();
            await().atMost(Duration.ofSeconds(10)).until(() -> Http.get(server.baseUrl() + "/health").status() == 503);
            int sentAtOutage = sent.get();
            // the outage: for 30 s the server stays up, answers, says the database is down, and keeps receiving
            await().during(Duration.ofSeconds(30)).atMost(Duration.ofSeconds(45)).until(() -> {
                Http.Response health = Http.get(server.baseUrl() + "/health");
                return health.status() == 503 && "DOWN".equals(((Map<?, ?>) health.json().get("database")).get("status"));
            });
            assertThat(sent.get() - sentAtOutage).as("readings sent during the outage").isGreaterThan(500);

            pg = EmbeddedPostgres.builder().setDataDirectory(data).setCleanDataDirectory(false).setPort(pgPort).start();
            await().atMost(Duration.ofSeconds(30)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
            await().atMost(Duration.ofSeconds(10)).until(() -> sent.get() >= sentAtOutage + 700);
            stream.shutdown();
            assertThat(stream.awaitTermination(5, TimeUnit.SECONDS)).isTrue();
            int total = sent.get();

            await().atMost(Duration.ofSeconds(60)).until(() -> server.count(
                    "SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_OUT01'") >= total);
            assertThat(server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_OUT01'")).isEqualTo(total);
            assertThat(server.count("SELECT count(DISTINCT seq) FROM sensor_data WHERE esp_id = 'ESP_OUT01'")).isEqualTo(total);
            // in order: the database ids follow the device's sequence
            assertThat(server.count("""
                    SELECT count(*) FROM (SELECT seq, lag(seq) OVER (ORDER BY id) AS prev FROM sensor_data WHERE esp_id = 'ESP_OUT01') s
                     WHERE prev IS NOT NULL AND seq <> prev + 1""")).isZero();
        } finally {
            stream.shutdownNow();
            server.stop();
            pg.close();
        }
    }

    @Test
    void should_store_messages_published_while_the_server_was_stopped() {
        KaiserServer server = new KaiserServer("restart", Map.of("kaiser.registration.auto-approve", "true")).start();
        try (MqttTestClient device = new MqttTestClient(server.mqttUrl())) {
            await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
            device.publish(server.topic("ESP_RST01", "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}", 0);
            await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/esp/devices/ESP_RST01").status() == 200);

            server.stop();
            for (int i = 0; i < 300; i++) {
                device.publish(server.topic("ESP_RST01", "sensor/4/data"), "{\"ts\":" + (1795000000L + i)
                        + ",\"esp_id\":\"ESP_RST01\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":300,\"seq\":" + i + "}", 1);
            }
            device.publish(server.topic("ESP_RST01", "system/error"), "{\"error_code\":3014,\"severity\":2,\"message\":\"while you were away\"}", 1);

            server.start();
            await().atMost(Duration.ofSeconds(30)).until(() ->
                    server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_RST01'") == 300
                            && server.count("SELECT count(*) FROM error_events WHERE esp_id = 'ESP_RST01'") == 1);
            assertThat(server.count("SELECT count(DISTINCT seq) FROM sensor_data WHERE esp_id = 'ESP_RST01'")).isEqualTo(300);
        } finally {
            server.stop();
        }
    }
}
