package io.kaiser.integration;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.LiveClient;
import io.kaiser.support.ScriptedDevice;
import io.kaiser.support.ScriptedFleet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Emergency stop and clear (contract decision 8) against the real broker and database. */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class EmergencyIT {
    static KaiserServer server;

    @BeforeAll
    static void start() {
        server = new KaiserServer("emergency", Map.of("kaiser.registration.auto-approve", "true")).start();
        awaitHealthy(server);
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    static void awaitHealthy(KaiserServer s) {
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(s.baseUrl() + "/health").status() == 200);
    }

    static ScriptedDevice device(String esp) {
        ScriptedDevice d = new ScriptedDevice(server, server.mqttUrl(), esp);
        d.announce(5);
        await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/actuators/" + esp + "/5/status").status() == 200);
        return d;
    }

    static Http.Response stop(KaiserServer s, String body) {
        return Http.post(s.baseUrl() + "/actuators/emergency_stop", body);
    }

    static Http.Response clear(KaiserServer s, String body) {
        return Http.post(s.baseUrl() + "/actuators/clear_emergency", body);
    }

    static Http.Response command(String esp) {
        return Http.post(server.baseUrl() + "/actuators/" + esp + "/5/command", "{\"command\":\"ON\"}");
    }

    @Test
    @Order(1)
    @SuppressWarnings("unchecked")
    void should_stop_200_devices_with_one_off_each_one_broadcast_and_200_acknowledgements() {
        int n = 200;
        // the class's own server, first of all tests so these are its only devices (a second KaiserServer in the same
        // JVM would share Vert.x: stopping it stops the other's HTTP server too)
        KaiserServer fleetServer = server;
        {
            List<String> esps = IntStream.range(0, n).mapToObj(i -> String.format("ESP_F%04d", i)).toList();
            try (ScriptedFleet fleet = new ScriptedFleet(fleetServer)) {
                fleet.announce(esps, 5);
                await().atMost(Duration.ofSeconds(30)).until(() -> fleetServer.count("SELECT count(*) FROM actuator_states") == n);
                List<Long> toLastAnswer = new ArrayList<>();
                List<Long> toAllRecorded = new ArrayList<>();
                for (int run = 1; run <= 3; run++) {
                    fleet.clear();
                    Instant t0 = Instant.now();
                    long start = System.nanoTime();
                    Http.Response r = stop(fleetServer, "{\"reason\":\"fleet test run " + run + "\"}");
                    long restMillis = (System.nanoTime() - start) / 1_000_000;
                    assertThat(r.status()).isEqualTo(200);
                    String incident = (String) r.json().get("incident_id");
                    assertThat(r.header("Location")).isEqualTo("/api/v1/actuators/emergency/" + incident);
                    assertThat(r.json()).containsEntry("devices_stopped", n).containsEntry("actuators_stopped", n);
                    assertThat(r.list("commands")).hasSize(n);

                    await().atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(20)).until(() -> fleetServer.count(
                            "SELECT count(*) FROM commands WHERE incident_id = '" + incident + "' AND command_type = 'emergency_stop' AND status = 'applied'") == n);
                    long lastAnswer = (fleet.lastAnswerNanos() - start) / 1_000_000;
                    Instant lastCompleted = ((java.sql.Timestamp) fleetServer.query(
                            "SELECT max(completed_at) AS t FROM commands WHERE incident_id = '" + incident + "' AND command_type = 'emergency_stop'")
                            .get(0).get("t")).toInstant();
                    long recorded = Duration.between(t0, lastCompleted).toMillis();
                    toLastAnswer.add(lastAnswer);
                    toAllRecorded.add(recorded);
                    System.out.printf("EMERGENCY %d devices run %d: REST answered in %d ms, last device ack sent after %d ms, "
                            + "last ack recorded by the server after %d ms%n", n, run, restMillis, lastAnswer, recorded);

                    for (String esp : esps) {
                        List<Map<String, Object>> got = fleet.commands(esp);
                        assertThat(got).as(esp).hasSize(1);
                        assertThat(got.get(0)).containsEntry("command", "OFF").containsEntry("value", 0.0)
                                .containsEntry("correlation_id", incident + ":" + esp + ":5").containsEntry("intent_id", incident + ":" + esp + ":5");
                    }
                    await().atMost(Duration.ofSeconds(5)).until(() -> fleet.broadcasts(incident).size() == 1);
                    Map<String, Object> b = fleet.broadcasts(incident).get(0);
                    assertThat(b).containsEntry("command", "emergency_stop").containsEntry("reason", "fleet test run " + run)
                            .containsEntry("devices_stopped", n).containsEntry("actuators_stopped", n).containsEntry("_retained", false)
                            .containsEntry("correlation_id", incident + ":broadcast").containsKeys("issued_by", "timestamp");
                    Map<String, Object> view = Http.get(fleetServer.baseUrl() + "/actuators/emergency/" + incident).json();
                    assertThat(view).containsEntry("latched", true).containsEntry("cleared_at", null);
                    assertThat((Map<String, Object>) view.get("broadcast")).containsEntry("status", "applied");
                    @SuppressWarnings("unchecked")
                    Map<String, Object> counts = (Map<String, Object>) view.get("counts");
                    assertThat(counts).containsEntry("acknowledged", n).containsEntry("pending", 0).containsEntry("failed", 0)
                            .containsEntry("devices_acknowledged", n);

                    Http.Response cleared = clear(fleetServer, "{\"reason\":\"run " + run + " done\"}");
                    assertThat(cleared.status()).isEqualTo(200);
                    assertThat(cleared.json()).containsEntry("devices_cleared", n);
                    assertThat(Http.get(fleetServer.baseUrl() + "/actuators/emergency/" + incident).json().get("cleared_at")).isNotNull();
                    await().atMost(Duration.ofSeconds(10)).until(() -> fleet.emergencyMessages().size() == n);
                    assertThat(fleet.broadcasts(incident)).hasSize(1);
                }
                List<Long> sortedAnswer = toLastAnswer.stream().sorted().toList();
                List<Long> sortedRecorded = toAllRecorded.stream().sorted().toList();
                System.out.printf("EMERGENCY %d devices over 3 runs: last ack sent median %d ms max %d ms; "
                        + "last ack recorded median %d ms max %d ms%n", n, sortedAnswer.get(1), sortedAnswer.get(2),
                        sortedRecorded.get(1), sortedRecorded.get(2));
            }
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void should_block_only_the_stopped_device_until_cleared() {
        try (ScriptedDevice one = device("ESP_EMB1"); ScriptedDevice other = device("ESP_EMB2");
             LiveClient live = new LiveClient(server.wsUrl() + "?types=actuator_alert")) {
            Http.Response r = stop(server, "{\"esp_id\":\"ESP_EMB1\",\"reason\":\"smoke in greenhouse 1\"}");
            assertThat(r.status()).isEqualTo(200);
            String incident = (String) r.json().get("incident_id");
            assertThat(r.json()).containsEntry("devices_stopped", 1).containsEntry("actuators_stopped", 1);
            assertThat(r.list("commands")).singleElement().satisfies(c -> assertThat(c)
                    .containsEntry("esp_id", "ESP_EMB1").containsEntry("gpio", 5).containsEntry("correlation_id", incident + ":ESP_EMB1:5"));
            await().atMost(Duration.ofSeconds(5)).until(() -> one.received().size() == 1);
            assertThat(one.received().get(0)).containsEntry("command", "OFF").containsEntry("correlation_id", incident + ":ESP_EMB1:5");
            assertThat(other.received()).isEmpty();

            Map<String, Object> alert = live.await(e -> "actuator_alert".equals(e.get("type")), Duration.ofSeconds(5));
            assertThat(alert).isNotNull();
            assertThat(LiveClient.data(alert)).containsEntry("esp_id", "ESP_EMB1").containsEntry("alert_type", "emergency_stop")
                    .containsEntry("actuator_type", "all").containsEntry("incident_correlation_id", incident)
                    .containsEntry("devices_stopped", 1).containsEntry("actuators_stopped", 1);

            Http.Response refused = command("ESP_EMB1");
            assertThat(refused.status()).isEqualTo(423);
            assertThat(refused.contentType()).startsWith("application/problem+json");
            assertThat((String) refused.json().get("detail")).contains("ESP_EMB1").contains(incident);
            assertThat(command("ESP_EMB2").status()).isEqualTo(202);

            await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
                Map<String, Object> view = Http.get(server.baseUrl() + "/actuators/emergency/" + incident).json();
                assertThat(view).containsEntry("scope", "ESP_EMB1").containsEntry("latched", true);
                assertThat((Map<String, Object>) view.get("counts")).containsEntry("acknowledged", 1);
            });

            Http.Response cleared = clear(server, "{\"esp_id\":\"ESP_EMB1\",\"reason\":\"all clear\"}");
            assertThat(cleared.status()).isEqualTo(200);
            assertThat(cleared.json()).containsEntry("devices_cleared", 1).containsEntry("cleared_incidents", List.of(incident));
            Map<String, Object> clearAlert = live.await(e -> "actuator_alert".equals(e.get("type"))
                    && "emergency_cleared".equals(LiveClient.data(e).get("alert_type")), Duration.ofSeconds(5));
            assertThat(clearAlert).isNotNull();
            assertThat(command("ESP_EMB1").status()).isEqualTo(202);
            assertThat(Http.get(server.baseUrl() + "/actuators/emergency/" + incident).json())
                    .containsEntry("latched", false).extractingByKey("cleared_at").isNotNull();
            assertThat(clear(server, "{\"esp_id\":\"ESP_EMB1\"}").status()).isEqualTo(409);
        }
    }

    @Test
    void should_make_two_stops_in_a_row_two_incidents_both_published() {
        try (ScriptedFleet fleet = new ScriptedFleet(server)) {
            fleet.announce(List.of("ESP_EMC1", "ESP_EMC2"), 7);
            await().atMost(Duration.ofSeconds(10)).until(() -> server.count(
                    "SELECT count(*) FROM actuator_states WHERE esp_id IN ('ESP_EMC1','ESP_EMC2')") == 2);
            try {
                Http.Response first = stop(server, "{\"reason\":\"same reason\",\"gpio\":7}");
                Http.Response second = stop(server, "{\"reason\":\"same reason\",\"gpio\":7}");
                assertThat(first.status()).isEqualTo(200);
                assertThat(second.status()).isEqualTo(200);
                String a = (String) first.json().get("incident_id");
                String b = (String) second.json().get("incident_id");
                assertThat(a).isNotEqualTo(b);
                await().atMost(Duration.ofSeconds(5)).until(() -> fleet.broadcasts(a).size() == 1 && fleet.broadcasts(b).size() == 1);
                for (String esp : List.of("ESP_EMC1", "ESP_EMC2")) {
                    await().atMost(Duration.ofSeconds(5)).until(() -> fleet.commands(esp).size() == 2);
                    assertThat(fleet.commands(esp)).extracting(c -> c.get("correlation_id"))
                            .containsExactly(a + ":" + esp + ":7", b + ":" + esp + ":7");
                }
                assertThat(server.count("SELECT count(*) FROM emergency_incidents WHERE incident_id IN ('" + a + "','" + b + "')")).isEqualTo(2);
                // a stop for all blocks every device
                Http.Response refused = command("ESP_EMC1");
                assertThat(refused.status()).isEqualTo(423);
                assertThat((String) refused.json().get("detail")).contains(b).contains("all devices");
            } finally {
                Http.Response cleared = clear(server, "{\"reason\":\"done\"}");
                assertThat(cleared.status()).isEqualTo(200);
            }
            assertThat(command("ESP_EMC1").status()).isNotEqualTo(423);
        }
    }

    @Test
    void should_keep_the_latch_over_a_server_restart() {
        Http.Response r;
        try (ScriptedDevice dev = device("ESP_EMD1")) {
            r = stop(server, "{\"esp_id\":\"ESP_EMD1\",\"reason\":\"before restart\"}");
            assertThat(r.status()).isEqualTo(200);
        }
        String incident = (String) r.json().get("incident_id");
        server.stop();
        server.start();
        awaitHealthy(server);
        try (ScriptedDevice dev = device("ESP_EMD1")) {
            assertThat(command("ESP_EMD1").status()).isEqualTo(423);
            assertThat(Http.get(server.baseUrl() + "/actuators/emergency/" + incident).json()).containsEntry("latched", true);
            assertThat(clear(server, "{\"esp_id\":\"ESP_EMD1\"}").status()).isEqualTo(200);
            assertThat(command("ESP_EMD1").status()).isEqualTo(202);
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void should_keep_the_broadcast_and_off_commands_in_the_outbox_while_the_broker_is_away() {
        try (ScriptedFleet fleet = new ScriptedFleet(server)) {
            fleet.announce(List.of("ESP_EMO1", "ESP_EMO2"), 9);
            await().atMost(Duration.ofSeconds(10)).until(() -> server.count(
                    "SELECT count(*) FROM actuator_states WHERE esp_id IN ('ESP_EMO1','ESP_EMO2')") == 2);
            String brokerUrl = server.mqttUrl(); // mqttUrl() reports the override once it is set
            server.stop();
            server.with("kaiser.mqtt.url", "tcp://127.0.0.1:" + closedPort()).start();
            String incident;
            try {
                await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/esp/devices").status() == 200);
                Http.Response r = stop(server, "{\"reason\":\"broker away\",\"gpio\":9}");
                assertThat(r.status()).isEqualTo(200);
                incident = (String) r.json().get("incident_id");
                assertThat(r.json()).containsEntry("actuators_stopped", 2);
                assertThat(server.count("SELECT count(*) FROM commands WHERE incident_id = '" + incident
                        + "' AND published_at IS NULL AND status = 'pending'")).isEqualTo(3);
                assertThat(command("ESP_EMO1").status()).isEqualTo(423);
            } finally {
                server.stop();
                server.with("kaiser.mqtt.url", brokerUrl).start();
            }
            awaitHealthy(server);
            await().atMost(Duration.ofSeconds(10)).until(() -> fleet.broadcasts(incident).size() == 1
                    && fleet.commands("ESP_EMO1").size() == 1 && fleet.commands("ESP_EMO2").size() == 1);
            assertThat(fleet.commands("ESP_EMO1").get(0)).containsEntry("correlation_id", incident + ":ESP_EMO1:9");
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> assertThat(
                    (Map<String, Object>) Http.get(server.baseUrl() + "/actuators/emergency/" + incident).json().get("counts"))
                    .containsEntry("acknowledged", 2).containsEntry("pending", 0));
            assertThat(clear(server, "{\"reason\":\"broker back\"}").status()).isEqualTo(200);
        }
    }

    static int closedPort() {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            return s.getLocalPort();
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void should_refuse_bad_requests_with_400_404_and_409() {
        try (ScriptedDevice dev = device("ESP_EME1")) {
            Http.Response missing = stop(server, "{\"esp_id\":\"ESP_EME1\"}");
            assertThat(missing.status()).isEqualTo(400);
            assertThat(missing.contentType()).startsWith("application/problem+json");
            assertThat((String) missing.json().get("detail")).contains("reason");
            assertThat((String) stop(server, "{\"reason\":\"\"}").json().get("detail")).contains("reason");
            assertThat(stop(server, "{\"reason\":\"" + "x".repeat(501) + "\"}").status()).isEqualTo(400);
            assertThat(stop(server, "{\"reason\":42}").status()).isEqualTo(400);
            Http.Response gpio = stop(server, "{\"esp_id\":\"ESP_EME1\",\"gpio\":\"five\",\"reason\":\"x\"}");
            assertThat(gpio.status()).isEqualTo(400);
            assertThat((String) gpio.json().get("detail")).contains("gpio");
            assertThat((String) stop(server, "{\"reason\":\"x\",\"espid\":\"ESP_EME1\"}").json().get("detail")).contains("espid");
            Http.Response notJson = stop(server, "not json");
            assertThat(notJson.status()).as(notJson.body()).isEqualTo(400);
            assertThat((String) notJson.json().get("detail")).contains("JSON");
            assertThat(server.count("SELECT count(*) FROM emergency_latches")).isZero();

            Http.Response unknown = stop(server, "{\"esp_id\":\"ESP_NOPE\",\"reason\":\"x\"}");
            assertThat(unknown.status()).isEqualTo(404);
            assertThat(unknown.contentType()).startsWith("application/problem+json");
            assertThat(server.count("SELECT count(*) FROM emergency_incidents WHERE scope = 'ESP_NOPE'")).isZero();
            assertThat(clear(server, "{\"esp_id\":\"ESP_NOPE\"}").status()).isEqualTo(404);
            assertThat(Http.get(server.baseUrl() + "/actuators/emergency/no-such-incident").status()).isEqualTo(404);

            Http.Response nothing = clear(server, "{\"esp_id\":\"ESP_EME1\"}");
            assertThat(nothing.status()).isEqualTo(409);
            assertThat(nothing.contentType()).startsWith("application/problem+json");
            assertThat(clear(server, "{}").status()).isEqualTo(409);
            assertThat(clear(server, "{\"reason\":\"" + "x".repeat(501) + "\"}").status()).isEqualTo(400);
        }
    }
}
