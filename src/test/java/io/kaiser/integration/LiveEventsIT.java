package io.kaiser.integration;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletionStage;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.LiveClient;
import io.kaiser.support.MqttTestClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** WebSocket live events: a client that never reads must not slow ingest; MQTT 3.1.1 devices are served too. */
class LiveEventsIT {
    static KaiserServer server;

    @BeforeAll
    static void start() {
        server = new KaiserServer("live", Map.of("kaiser.registration.auto-approve", "true", "kaiser.live.max-drops-before-close", "50")).start();
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    @Test
    void should_keep_ingesting_at_full_speed_while_a_websocket_client_never_reads() throws Exception {
        // a client that asks for no messages at all: its socket fills up and the server must drop it, not wait for it
        WebSocket stuck = HttpClient.newHttpClient().newWebSocketBuilder().buildAsync(URI.create(server.wsUrl()), new WebSocket.Listener() {
            @Override
            public void onOpen(WebSocket webSocket) {
                // never call request(): nothing is ever read
            }

            @Override
            public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
                return null;
            }
        }).join();
        try (MqttTestClient device = new MqttTestClient(server.mqttUrl())) {
            device.publish(server.topic("ESP_LIVE1", "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}", 0);
            await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/esp/devices/ESP_LIVE1").status() == 200);
            String padding = "x".repeat(12000);
            for (int i = 0; i < 1000; i++) {
                device.publish(server.topic("ESP_LIVE1", "sensor/4/data"), "{\"ts\":" + (1795000000L + i)
                        + ",\"esp_id\":\"ESP_LIVE1\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":300,\"seq\":" + i
                        + ",\"zone_id\":\"" + padding + "\"}", 1);
            }
            await().atMost(Duration.ofSeconds(30)).until(() -> server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_LIVE1'") == 1000);
            // the stuck client was disconnected rather than allowed to hold anything up
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
                    assertThat(((Map<?, ?>) Http.get(server.baseUrl() + "/health").json().get("live")).get("clients")).isEqualTo(0));
        } finally {
            stuck.abort();
        }
    }

    @Test
    void should_serve_an_mqtt_3_1_1_device() {
        try (LiveClient live = new LiveClient(server.wsUrl() + "?types=esp_health&esp_ids=ESP_V311")) {
            org.eclipse.paho.client.mqttv3.MqttClient old = new org.eclipse.paho.client.mqttv3.MqttClient(server.mqttUrl(), "v311-" + server.kaiserId(),
                    new org.eclipse.paho.client.mqttv3.persist.MemoryPersistence());
            org.eclipse.paho.client.mqttv3.MqttConnectOptions o = new org.eclipse.paho.client.mqttv3.MqttConnectOptions();
            o.setMqttVersion(org.eclipse.paho.client.mqttv3.MqttConnectOptions.MQTT_VERSION_3_1_1);
            old.connect(o);
            java.util.concurrent.BlockingQueue<String> acks = new java.util.concurrent.LinkedBlockingQueue<>();
            old.subscribe(server.topic("ESP_V311", "system/heartbeat/ack"), 0, (t, m) -> acks.add(new String(m.getPayload())));
            old.publish(server.topic("ESP_V311", "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}".getBytes(), 0, false);
            String ack = acks.poll(5, java.util.concurrent.TimeUnit.SECONDS);
            assertThat(ack).as("ACK over MQTT 3.1.1").contains("\"status\":\"online\"");
            assertThat(live.await(e -> "esp_health".equals(e.get("type")), Duration.ofSeconds(3))).isNotNull();
            old.disconnect();
            old.close();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
