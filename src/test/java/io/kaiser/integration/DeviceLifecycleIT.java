package io.kaiser.integration;

import java.time.Duration;
import java.util.Map;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kaiser.support.Heartbeats;
import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.LiveClient;
import io.kaiser.support.MqttTestClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Registration, heartbeat ACKs, approval, rejection, LWT and heartbeat timeout against the real broker and database. */
class DeviceLifecycleIT {
    static final ObjectMapper JSON = new ObjectMapper();

    static KaiserServer server;
    static MqttTestClient device;

    @BeforeAll
    static void start() {
        server = new KaiserServer("lifecycle", Map.of(
                "kaiser.registration.auto-approve-patterns", "ESP_AUTO.*",
                "kaiser.heartbeat.timeout-seconds", "2",
                "kaiser.heartbeat.check-interval", "500",
                // a 2 s heartbeat timeout would beat the LWT's takeover grace: these tests check wills taken at once
                "kaiser.lwt.takeover-grace-ms", "0",
                "kaiser.registration.rejection-cooldown-seconds", "300")).start();
        device = new MqttTestClient(server.mqttUrl());
        device.subscribe("kaiser/" + server.kaiserId() + "/esp/+/system/heartbeat/ack", 0);
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
    }

    @AfterAll
    static void stop() {
        device.close();
        server.stop();
    }

    static Map<String, Object> heartbeat(String espId) throws Exception {
        device.publish(server.topic(espId, "system/heartbeat"), Heartbeats.original(espId), 0);
        MqttTestClient.Received ack = Heartbeats.serverAck(device, server, espId, Duration.ofSeconds(5));
        assertThat(ack).as("heartbeat ACK for " + espId).isNotNull();
        assertThat(ack.retained()).isFalse();
        @SuppressWarnings("unchecked")
        Map<String, Object> parsed = JSON.readValue(ack.payload(), Map.class);
        return parsed;
    }

    @Test
    void should_register_unknown_device_as_pending_and_ack_within_one_second() throws Exception {
        long start = System.nanoTime();
        Map<String, Object> ack = heartbeat("ESP_NEW01");
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertThat(millis).as("ACK latency ms").isLessThan(1000);
        assertThat(ack).containsEntry("status", "pending_approval").containsEntry("ack_type", "heartbeat")
                .containsEntry("contract_version", 2).containsKeys("server_time", "handover_epoch", "session_id");
        assertThat(((Number) ack.get("handover_epoch")).intValue()).isGreaterThanOrEqualTo(1);
        assertThat(Http.get(server.baseUrl() + "/esp/devices/pending").list("devices"))
                .anySatisfy(d -> assertThat(d).containsEntry("esp_id", "ESP_NEW01"));
    }

    @Test
    void should_ack_online_after_approval_and_rejected_after_rejection() throws Exception {
        assertThat(heartbeat("ESP_APPR01")).containsEntry("status", "pending_approval");
        Http.Response approved = Http.post(server.baseUrl() + "/esp/devices/ESP_APPR01/approve", "{\"name\":\"Greenhouse 1\"}");
        assertThat(approved.status()).isEqualTo(200);
        assertThat(approved.json()).containsEntry("status", "approved");
        assertThat(heartbeat("ESP_APPR01")).containsEntry("status", "online");
        assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_APPR01").json())
                .containsEntry("status", "online").containsEntry("name", "Greenhouse 1");

        Http.Response again = Http.post(server.baseUrl() + "/esp/devices/ESP_APPR01/approve", null);
        assertThat(again.status()).isEqualTo(409);
        assertThat(again.contentType()).startsWith("application/problem+json");

        assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_APPR01/reject", "{\"reason\":\"unknown board\"}").status()).isEqualTo(200);
        assertThat(heartbeat("ESP_APPR01")).containsEntry("status", "rejected");
    }

    @Test
    void should_auto_approve_devices_matching_the_pattern() throws Exception {
        assertThat(heartbeat("ESP_AUTO7")).containsEntry("status", "online");
        assertThat(heartbeat("ESP_MANUAL7")).containsEntry("status", "pending_approval");
    }

    @Test
    void should_mark_device_offline_on_lwt_at_once_and_ignore_a_duplicate() throws Exception {
        assertThat(heartbeat("ESP_AUTOLWT")).containsEntry("status", "online");
        try (LiveClient live = new LiveClient(server.wsUrl() + "?types=esp_health&esp_ids=ESP_AUTOLWT")) {
            String will = "{\"status\":\"offline\",\"esp_id\":\"ESP_AUTOLWT\",\"reason\":\"unexpected_disconnect\",\"timestamp\":1735818000}";
            MqttConnectionOptions o = new MqttConnectionOptions();
            MqttMessage willMsg = new MqttMessage(will.getBytes());
            willMsg.setQos(1);
            willMsg.setRetained(true);
            o.setWill(server.topic("ESP_AUTOLWT", "system/will"), willMsg);
            MqttTestClient board = new MqttTestClient(server.mqttUrl(), "ESP_AUTOLWT-" + server.kaiserId(), o);
            board.crash();
            Map<String, Object> event = live.await(e -> "offline".equals(LiveClient.data(e).get("status")), Duration.ofSeconds(10));
            assertThat(event).as("esp_health offline event").isNotNull();
            assertThat(LiveClient.data(event)).containsEntry("source", "lwt").containsEntry("reason", "unexpected_disconnect");
        }
        assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_AUTOLWT").json()).containsEntry("status", "offline");
        // a second will for an offline device changes nothing (dedupe)
        device.publish(server.topic("ESP_AUTOLWT", "system/will"),
                "{\"status\":\"offline\",\"esp_id\":\"ESP_AUTOLWT\",\"reason\":\"crash\",\"timestamp\":1}", 1);
        await().atMost(Duration.ofSeconds(5)).until(() -> server.count(
                "SELECT count(*) FROM device_answers") >= 0 && server.bean("ingestDrainer", io.kaiser.ingest.IngestDrainer.class).backlogBytes() == 0);
        assertThat(server.count("SELECT count(*) FROM device_events WHERE esp_id = 'ESP_AUTOLWT' AND event_type = 'lwt_received'")).isEqualTo(1);

        // the next good heartbeat brings it back and clears the retained will
        assertThat(heartbeat("ESP_AUTOLWT")).containsEntry("status", "online");
        try (MqttTestClient observer = new MqttTestClient(server.mqttUrl())) {
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
                observer.clear();
                observer.subscribe(server.topic("ESP_AUTOLWT", "system/will"), 1);
                assertThat(observer.next(Duration.ofMillis(500))).as("retained will after clear").isNull();
            });
        }
    }

    @Test
    void should_flag_a_flapping_device() throws Exception {
        String will = "{\"status\":\"offline\",\"esp_id\":\"ESP_AUTOFLAP\",\"reason\":\"network_failure\",\"timestamp\":1}";
        assertThat(heartbeat("ESP_AUTOFLAP")).containsEntry("status", "online");
        device.publish(server.topic("ESP_AUTOFLAP", "system/will"), will, 1);
        await().atMost(Duration.ofSeconds(5)).until(() -> server.count(
                "SELECT count(*) FROM devices WHERE esp_id = 'ESP_AUTOFLAP' AND status = 'offline'") == 1);
        assertThat(heartbeat("ESP_AUTOFLAP")).containsEntry("status", "online");
        device.publish(server.topic("ESP_AUTOFLAP", "system/will"), will, 1);
        await().atMost(Duration.ofSeconds(5)).until(() -> server.count(
                "SELECT count(*) FROM devices WHERE esp_id = 'ESP_AUTOFLAP' AND status = 'offline'") == 1);
        assertThat(server.query("SELECT last_disconnect->>'is_flapping' AS f FROM devices WHERE esp_id = 'ESP_AUTOFLAP'").get(0))
                .containsEntry("f", "true");
    }

    @Test
    void should_mark_a_silent_device_offline_after_the_heartbeat_timeout_and_reset_its_actuators() throws Exception {
        assertThat(heartbeat("ESP_AUTOQUIET")).containsEntry("status", "online");
        device.publish(server.topic("ESP_AUTOQUIET", "actuator/5/status"),
                "{\"ts\":1735818001,\"esp_id\":\"ESP_AUTOQUIET\",\"gpio\":5,\"type\":\"pump\",\"state\":true,\"pwm\":255}", 1);
        await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/actuators/ESP_AUTOQUIET/5/status").status() == 200);
        assertThat(Http.get(server.baseUrl() + "/actuators/ESP_AUTOQUIET/5/status").json()).containsEntry("state", "on");
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
                assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_AUTOQUIET").json()).containsEntry("status", "offline"));
        assertThat(Http.get(server.baseUrl() + "/actuators/ESP_AUTOQUIET/5/status").json()).containsEntry("state", "off");
        assertThat(Http.get(server.baseUrl() + "/actuators/ESP_AUTOQUIET/5/history").list("history"))
                .anySatisfy(h -> assertThat(h).containsEntry("event", "reset").containsEntry("issued_by", "system:heartbeat_timeout"));
    }

    @Test
    void should_keep_a_device_that_only_sends_data_online_and_time_it_out_when_the_data_stops() throws Exception {
        assertThat(heartbeat("ESP_AUTODATA")).containsEntry("status", "online");
        java.util.concurrent.atomic.AtomicInteger seq = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.ScheduledExecutorService sensor = java.util.concurrent.Executors.newSingleThreadScheduledExecutor();
        try {
            // no more heartbeats, a reading every 200 ms: the 2 s timeout must not fire while they come
            sensor.scheduleAtFixedRate(() -> {
                int n = seq.incrementAndGet();
                device.publish(server.topic("ESP_AUTODATA", "sensor/4/data"), "{\"esp_id\":\"ESP_AUTODATA\",\"seq\":" + n
                        + ",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":356,\"value\":22.25,\"unit\":\"°C\",\"quality\":\"good\",\"ts\":"
                        + (1735818000 + n) + "}", 1);
            }, 0, 200, java.util.concurrent.TimeUnit.MILLISECONDS);
            await().during(Duration.ofSeconds(5)).atMost(Duration.ofSeconds(7)).untilAsserted(() ->
                    assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_AUTODATA").json()).containsEntry("status", "online"));
        } finally {
            sensor.shutdownNow();
        }
        assertThat(server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_AUTODATA'")).isGreaterThan(10);
        await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
                assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_AUTODATA").json()).containsEntry("status", "offline"));
    }

    @Test
    void should_publish_retained_server_status_online() {
        try (MqttTestClient observer = new MqttTestClient(server.mqttUrl())) {
            observer.subscribe("kaiser/" + server.kaiserId() + "/server/status", 1);
            MqttTestClient.Received status = observer.next(Duration.ofSeconds(5));
            assertThat(status).isNotNull();
            assertThat(status.retained()).isTrue();
            assertThat(status.payload()).contains("\"status\":\"online\"");
        }
    }

    @Test
    void should_register_the_heartbeats_of_one_ingest_batch_together_keeping_arrival_order() throws Exception {
        // as the drainer hands a batch over: two new devices, a reading of one of them before it could have heard its
        // ACK (its first heartbeat is stored first, so the reading is kept), then that device's next heartbeat
        long now = System.currentTimeMillis();
        String reading = "{\"ts\":1795700000,\"esp_id\":\"ESP_AUTOBATCH2\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":356,"
                + "\"raw_mode\":true,\"quality\":\"good\"}";
        java.util.List<io.kaiser.ingest.InboundMessage> batch = java.util.List.of(
                message(1, "heartbeat", server.topic("ESP_BATCH1", "system/heartbeat"), now, Heartbeats.original("ESP_BATCH1")),
                message(2, "heartbeat", server.topic("ESP_AUTOBATCH2", "system/heartbeat"), now, Heartbeats.original("ESP_AUTOBATCH2")),
                message(3, "sensor-data", server.topic("ESP_AUTOBATCH2", "sensor/4/data"), now, reading),
                message(4, "heartbeat", server.topic("ESP_AUTOBATCH2", "system/heartbeat"), now + 1, Heartbeats.original("ESP_AUTOBATCH2")));
        org.apache.camel.Exchange done = server.camel().createProducerTemplate().send("direct:ingest-batch", e -> e.getMessage().setBody(batch));
        assertThat(done.getException()).isNull();

        assertThat(server.query("SELECT status, heartbeat_count FROM devices WHERE esp_id = 'ESP_BATCH1'").get(0))
                .containsEntry("status", "pending_approval").containsEntry("heartbeat_count", 1L);
        assertThat(server.query("SELECT status, heartbeat_count FROM devices WHERE esp_id = 'ESP_AUTOBATCH2'").get(0))
                .containsEntry("status", "online").containsEntry("heartbeat_count", 2L);
        assertThat(server.count("SELECT count(*) FROM sensor_data WHERE esp_id = 'ESP_AUTOBATCH2'")).isEqualTo(1);
        assertThat(server.count("SELECT count(*) FROM heartbeat_logs WHERE esp_id = 'ESP_AUTOBATCH2'")).isEqualTo(2);
        assertThat(server.count("SELECT count(*) FROM dead_letters WHERE esp_id = 'ESP_AUTOBATCH2'")).isZero();
        MqttTestClient.Received first = Heartbeats.serverAck(device, server, "ESP_BATCH1", Duration.ofSeconds(5));
        assertThat(first).isNotNull();
        assertThat(first.payload()).contains("\"status\":\"pending_approval\"");
        for (int i = 0; i < 2; i++) {
            MqttTestClient.Received ack = Heartbeats.serverAck(device, server, "ESP_AUTOBATCH2", Duration.ofSeconds(5));
            assertThat(ack).as("ACK " + (i + 1) + " of ESP_AUTOBATCH2").isNotNull();
            assertThat(ack.payload()).contains("\"status\":\"online\"");
        }

        // the same batch again (a replay after a crash before the checkpoint moved) neither registers nor logs twice
        assertThat(server.camel().createProducerTemplate().send("direct:ingest-batch", e -> e.getMessage().setBody(batch)).getException()).isNull();
        assertThat(server.count("SELECT count(*) FROM heartbeat_logs WHERE esp_id = 'ESP_AUTOBATCH2'")).isEqualTo(2);
        assertThat(server.count("SELECT count(*) FROM device_events WHERE esp_id = 'ESP_AUTOBATCH2' AND event_type = 'device_discovered'"))
                .isEqualTo(1);
    }

    private static io.kaiser.ingest.InboundMessage message(long position, String topicKey, String topic, long receivedAt, String payload) {
        return new io.kaiser.ingest.InboundMessage(position, topicKey, topic, topicKey.equals("heartbeat") ? 0 : 1, false, receivedAt,
                payload.getBytes(java.nio.charset.StandardCharsets.UTF_8), position + 1, "lifecycle-batch");
    }
}
