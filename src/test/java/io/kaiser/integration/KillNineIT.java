package io.kaiser.integration;

import java.time.Duration;
import java.util.Map;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.MqttTestClient;
import io.kaiser.support.ServerProcess;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Contract decision 2: a server killed at any instant loses nothing it acknowledged to the broker. The server runs
 * in a child JVM and is killed with SIGKILL in the middle of a stream of QoS 1 readings.
 */
class KillNineIT {

    @Test
    void should_store_every_reading_exactly_once_after_the_server_is_killed_with_sigkill_mid_stream() throws InterruptedException {
        KaiserServer server = new KaiserServer("killnine", Map.of("kaiser.registration.auto-approve", "true"));
        ServerProcess process = new ServerProcess(server).start();
        try (MqttTestClient device = new MqttTestClient(server.mqttUrl())) {
            await().atMost(Duration.ofSeconds(60)).ignoreExceptions().until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
            device.publish(server.topic("ESP_K9", "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}", 0);
            await().atMost(Duration.ofSeconds(10)).until(() -> Http.get(server.baseUrl() + "/esp/devices/ESP_K9").status() == 200);

            // a steady stream of 50 readings per second; the kill lands in the middle of it. The rate keeps what the
            // broker queues for the dead server under Mosquitto's max_queued_messages (1000) for 20 s: a restart on a
            // busy CI machine took 10 s, which at 100 a second overflowed the queue.
            java.util.concurrent.atomic.AtomicInteger sent = new java.util.concurrent.atomic.AtomicInteger();
            var stream = java.util.concurrent.Executors.newSingleThreadScheduledExecutor();
            stream.scheduleAtFixedRate(() -> publish(device, server, sent.getAndIncrement()), 0, 20, java.util.concurrent.TimeUnit.MILLISECONDS);
            await().atMost(Duration.ofSeconds(20)).until(() -> sent.get() >= 200);
            process.kill();
            int atKill = sent.get();
            process = new ServerProcess(server).start();
            await().atMost(Duration.ofSeconds(60)).ignoreExceptions().until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
            await().atMost(Duration.ofSeconds(20)).until(() -> sent.get() >= atKill + 350);
            stream.shutdown();
            assertThat(stream.awaitTermination(5, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            int seq = sent.get();
            int total = seq;
            await().atMost(Duration.ofSeconds(90)).ignoreExceptions().until(() ->
                    server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_K9'") >= total);
            assertThat(server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_K9'")).isEqualTo(total);
            assertThat(server.count("SELECT count(DISTINCT seq) FROM sensor_data WHERE esp_id = 'ESP_K9'")).isEqualTo(total);
        } finally {
            process.close();
        }
    }

    private static void publish(MqttTestClient device, KaiserServer server, int seq) {
        device.publish(server.topic("ESP_K9", "sensor/4/data"), "{\"ts\":" + (1795000000L + seq)
                + ",\"esp_id\":\"ESP_K9\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":300,\"seq\":" + seq + "}", 1);
    }
}
