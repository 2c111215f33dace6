package io.kaiser.integration;

import java.time.Duration;
import java.util.Map;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.ScriptedDevice;
import io.kaiser.support.ScriptedDevice.Mode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** The command path against the real broker and database, with a scripted device that answers like the firmware. */
class CommandsIT {
    static KaiserServer server;

    @BeforeAll
    static void start() {
        server = new KaiserServer("commands", Map.of(
                "kaiser.registration.auto-approve", "true",
                "kaiser.command.ack-timeout.actuator", "2s",
                "kaiser.command.rate-limit.per-second", "1",
                "kaiser.command.rate-limit.burst", "3")).start();
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
    }

    @AfterAll
    static void stop() {
        server.stop();
    }

    static ScriptedDevice device(String esp) {
        ScriptedDevice d = new ScriptedDevice(server, server.mqttUrl(), esp);
        d.announce(5);
        await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/actuators/" + esp + "/5/status").status() == 200);
        return d;
    }

    @Test
    void should_answer_202_with_location_and_complete_when_the_device_answers() {
        try (ScriptedDevice dev = device("ESP_CMD01")) {
            Http.Response r = Http.post(server.baseUrl() + "/actuators/ESP_CMD01/5/command", "{\"command\":\"ON\",\"duration\":60}");
            assertThat(r.status()).isEqualTo(202);
            String id = (String) r.json().get("correlation_id");
            assertThat(r.header("Location")).isEqualTo("/api/v1/commands/" + id);
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
                    assertThat(Http.get(server.baseUrl() + "/commands/" + id).json()).containsEntry("status", "applied"));
            Map<String, Object> view = Http.get(server.baseUrl() + "/commands/" + id).json();
            assertThat(view).containsKeys("created_at", "published_at", "completed_at").containsEntry("answer_topic", "actuator-response");
            assertThat(dev.received()).hasSize(1);
            Map<String, Object> sent = dev.received().get(0);
            assertThat(sent).containsEntry("command", "ON").containsEntry("value", 1.0).containsEntry("duration", 60)
                    .containsEntry("correlation_id", id).containsEntry("intent_id", id);
        }
    }

    @Test
    void should_wait_with_prefer_and_answer_200_with_the_outcome() {
        try (ScriptedDevice dev = device("ESP_CMD02")) {
            Http.Response r = Http.post(server.baseUrl() + "/actuators/ESP_CMD02/5/command", "{\"command\":\"PWM\",\"value\":0.5}",
                    "Prefer", "wait=5");
            assertThat(r.status()).isEqualTo(200);
            assertThat(r.json()).containsEntry("status", "applied");
            // the server's view follows the device's answer
            assertThat(Http.get(server.baseUrl() + "/actuators/ESP_CMD02/5/status").json()).containsEntry("state", "pwm").containsEntry("value", 0.5);
            dev.mode(Mode.FAIL);
            Http.Response failed = Http.post(server.baseUrl() + "/actuators/ESP_CMD02/5/command", "{\"command\":\"OFF\"}", "Prefer", "wait=5");
            assertThat(failed.status()).isEqualTo(200);
            assertThat(failed.json()).containsEntry("status", "failed");
        }
    }

    @Test
    void should_answer_504_and_then_record_timed_out_and_keep_a_late_answer() {
        try (ScriptedDevice dev = device("ESP_CMD03")) {
            dev.mode(Mode.LATE).lateBy(3500);
            Http.Response r = Http.post(server.baseUrl() + "/actuators/ESP_CMD03/5/command", "{\"command\":\"ON\"}", "Prefer", "wait=1");
            assertThat(r.status()).isEqualTo(504);
            assertThat(r.contentType()).startsWith("application/json");
            String id = (String) r.json().get("correlation_id");
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
                    assertThat(Http.get(server.baseUrl() + "/commands/" + id).json()).containsEntry("status", "timed_out"));
            await().atMost(Duration.ofSeconds(6)).untilAsserted(() ->
                    assertThat(Http.get(server.baseUrl() + "/commands/" + id).json().get("late_answers")).asList().hasSize(1));
            assertThat(Http.get(server.baseUrl() + "/commands/" + id).json()).containsEntry("status", "timed_out");
        }
    }

    @Test
    void should_ignore_an_answer_with_another_id_and_count_a_duplicate_answer_once() {
        try (ScriptedDevice dev = device("ESP_CMD04")) {
            dev.mode(Mode.WRONG_ID);
            Http.Response r = Http.post(server.baseUrl() + "/actuators/ESP_CMD04/5/command", "{\"command\":\"ON\"}", "Prefer", "wait=1");
            assertThat(r.status()).isEqualTo(504);
            String wrong = (String) r.json().get("correlation_id");
            dev.mode(Mode.TWICE);
            Http.Response twice = Http.post(server.baseUrl() + "/actuators/ESP_CMD04/5/command", "{\"command\":\"OFF\"}", "Prefer", "wait=5");
            assertThat(twice.json()).containsEntry("status", "applied");
            String id = (String) twice.json().get("correlation_id");
            // the device answered twice: the idempotent consumer processes the answer once
            await().atMost(Duration.ofSeconds(5)).until(() -> server.count(
                    "SELECT count(*) FROM camel_messageprocessed WHERE messageid LIKE '%" + id + "%'") == 1
                    && server.bean("ingestDrainer", io.kaiser.ingest.IngestDrainer.class).backlogBytes() == 0);
            assertThat(server.count("SELECT count(*) FROM device_answers WHERE correlation_id = '" + id + "'")).isEqualTo(1);
            assertThat(Http.get(server.baseUrl() + "/commands/" + id).json()).containsEntry("status", "applied");
            assertThat(Http.get(server.baseUrl() + "/commands/" + id).json().get("late_answers")).isNull();
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() ->
                    assertThat(Http.get(server.baseUrl() + "/commands/" + wrong).json()).containsEntry("status", "timed_out"));
        }
    }

    @Test
    void should_apply_a_duplicate_answer_inside_one_ingest_batch_once() {
        try (ScriptedDevice dev = device("ESP_CMD09")) {
            dev.mode(Mode.SILENT);
            Http.Response r = Http.post(server.baseUrl() + "/esp/devices/ESP_CMD09/system-command", "{\"command\":\"status\"}");
            assertThat(r.status()).isEqualTo(202);
            String id = (String) r.json().get("correlation_id");
            await().atMost(Duration.ofSeconds(5)).until(() -> dev.received().size() == 1);
            // the same answer twice (as a device or the broker may deliver it) in one batch, as the drainer hands it over
            String topic = server.topic("ESP_CMD09", "system/command/response");
            byte[] answer = ("{\"command\":\"status\",\"success\":true,\"correlation_id\":\"" + id + "\",\"message\":\"done\"}")
                    .getBytes(java.nio.charset.StandardCharsets.UTF_8);
            long now = System.currentTimeMillis();
            java.util.List<io.kaiser.ingest.InboundMessage> batch = java.util.List.of(
                    new io.kaiser.ingest.InboundMessage(1, "system-command-response", topic, 1, false, now, answer, 2, "dup-batch"),
                    new io.kaiser.ingest.InboundMessage(2, "system-command-response", topic, 1, false, now, answer, 3, "dup-batch"));
            org.apache.camel.Exchange done = server.camel().createProducerTemplate().send("direct:ingest-batch",
                    e -> e.getMessage().setBody(batch));
            assertThat(done.getException()).isNull();
            assertThat(server.count("SELECT count(*) FROM device_answers WHERE correlation_id = '" + id + "'")).isEqualTo(1);
            assertThat(server.count("SELECT count(*) FROM camel_messageprocessed WHERE messageid LIKE '%" + id + "%'")).isEqualTo(1);
            Map<String, Object> view = Http.get(server.baseUrl() + "/commands/" + id).json();
            assertThat(view).containsEntry("status", "applied").containsEntry("answer_topic", "system-command-response");
            assertThat(view.get("late_answers")).isNull();
            // the same batch again (a replay after a crash before the checkpoint moved) changes nothing
            assertThat(server.camel().createProducerTemplate().send("direct:ingest-batch", e -> e.getMessage().setBody(batch)).getException())
                    .isNull();
            assertThat(server.count("SELECT count(*) FROM device_answers WHERE correlation_id = '" + id + "'")).isEqualTo(1);
            assertThat(Http.get(server.baseUrl() + "/commands/" + id).json().get("late_answers")).isNull();
        }
    }

    static io.kaiser.ingest.InboundMessage answer(String topic, long position, String batchOrigin, String correlationId, boolean success) {
        byte[] payload = ("{\"command\":\"status\",\"success\":" + success + ",\"correlation_id\":\"" + correlationId
                + "\",\"message\":\"" + (success ? "done" : "broken") + "\"}").getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return new io.kaiser.ingest.InboundMessage(position, "system-command-response", topic, 1, false, System.currentTimeMillis(),
                payload, position + 1, batchOrigin);
    }

    @Test
    void should_apply_a_batch_of_answers_to_many_commands_in_arrival_order_per_command() {
        try (ScriptedDevice dev = device("ESP_CMD10");
             ScriptedDevice other = device("ESP_CMD11")) {
            dev.mode(Mode.SILENT);
            other.mode(Mode.SILENT);
            java.util.function.Function<String, String> issue = esp -> (String) Http.post(server.baseUrl() + "/esp/devices/" + esp
                    + "/system-command", "{\"command\":\"status\"}").json().get("correlation_id");
            String a = issue.apply("ESP_CMD10");
            String b = issue.apply("ESP_CMD10");
            String c = issue.apply("ESP_CMD10");
            String d = issue.apply("ESP_CMD11");
            await().atMost(Duration.ofSeconds(5)).until(() -> dev.received().size() == 3 && other.received().size() == 1);
            String topic = server.topic("ESP_CMD10", "system/command/response");
            var ingest = server.camel().createProducerTemplate();
            // c has ended before the batch: its second answer there is a late one
            assertThat(ingest.send("direct:ingest-batch", e -> e.getMessage().setBody(java.util.List.of(
                    answer(topic, 1, "many-first", c, true)))).getException()).isNull();
            String unknown = java.util.UUID.randomUUID().toString();
            java.util.List<io.kaiser.ingest.InboundMessage> batch = java.util.List.of(
                    answer(topic, 1, "many", a, true),
                    answer(topic, 2, "many", b, false),
                    answer(topic, 3, "many", c, false),
                    answer(topic, 4, "many", b, true),
                    answer(topic, 5, "many", unknown, true),
                    answer(server.topic("ESP_CMD11", "system/command/response"), 6, "many", d, false));
            assertThat(ingest.send("direct:ingest-batch", e -> e.getMessage().setBody(batch)).getException()).isNull();

            assertThat(Http.get(server.baseUrl() + "/commands/" + a).json()).containsEntry("status", "applied")
                    .containsEntry("answer_topic", "system-command-response").containsEntry("late_answers", null);
            // b: failed by its first answer, the second kept as a late answer (arrival order within one command)
            Map<String, Object> viewB = Http.get(server.baseUrl() + "/commands/" + b).json();
            assertThat(viewB).containsEntry("status", "failed").containsEntry("status_reason", "broken");
            assertThat((java.util.List<?>) viewB.get("late_answers")).hasSize(1);
            Map<String, Object> viewC = Http.get(server.baseUrl() + "/commands/" + c).json();
            assertThat(viewC).containsEntry("status", "applied");
            assertThat((java.util.List<?>) viewC.get("late_answers")).hasSize(1);
            assertThat(Http.get(server.baseUrl() + "/commands/" + d).json()).containsEntry("status", "failed");
            // every answer is stored, the one to no command too
            assertThat(server.count("SELECT count(*) FROM device_answers WHERE ingest_pos LIKE 'many:%'")).isEqualTo(6);
            assertThat(server.count("SELECT count(*) FROM device_answers WHERE correlation_id = '" + unknown + "'")).isEqualTo(1);

            // the same batch again (a replay after a crash before the checkpoint moved) changes nothing
            assertThat(ingest.send("direct:ingest-batch", e -> e.getMessage().setBody(batch)).getException()).isNull();
            assertThat(server.count("SELECT count(*) FROM device_answers WHERE ingest_pos LIKE 'many:%'")).isEqualTo(6);
            assertThat((java.util.List<?>) Http.get(server.baseUrl() + "/commands/" + b).json().get("late_answers")).hasSize(1);
            assertThat((java.util.List<?>) Http.get(server.baseUrl() + "/commands/" + c).json().get("late_answers")).hasSize(1);
        }
    }

    @Test
    void should_replay_an_idempotent_request_without_publishing_and_refuse_another_body_with_422() {
        try (ScriptedDevice dev = device("ESP_CMD05")) {
            Http.Response first = Http.post(server.baseUrl() + "/actuators/ESP_CMD05/5/command", "{\"command\":\"ON\"}",
                    "Idempotency-Key", "k-1", "Prefer", "wait=5");
            Http.Response again = Http.post(server.baseUrl() + "/actuators/ESP_CMD05/5/command", "{\"command\":\"ON\"}",
                    "Idempotency-Key", "k-1", "Prefer", "wait=5");
            assertThat(again.json().get("correlation_id")).isEqualTo(first.json().get("correlation_id"));
            assertThat(again.json()).containsEntry("idempotent_replay", true).containsEntry("status", "applied");
            Http.Response other = Http.post(server.baseUrl() + "/actuators/ESP_CMD05/5/command", "{\"command\":\"OFF\"}",
                    "Idempotency-Key", "k-1");
            assertThat(other.status()).isEqualTo(422);
            assertThat(other.contentType()).startsWith("application/problem+json");
            assertThat(dev.received()).hasSize(1);
        }
    }

    @Test
    void should_refuse_bad_requests_with_the_right_status() {
        try (ScriptedDevice dev = device("ESP_CMD06")) {
            assertThat(Http.post(server.baseUrl() + "/actuators/ESP_NOPE/5/command", "{\"command\":\"ON\"}").status()).isEqualTo(404);
            assertThat(Http.post(server.baseUrl() + "/actuators/ESP_CMD06/7/command", "{\"command\":\"ON\"}").status()).isEqualTo(404);
            Http.Response bad = Http.post(server.baseUrl() + "/actuators/ESP_CMD06/5/command", "{\"command\":\"BLINK\"}");
            assertThat(bad.status()).isEqualTo(400);
            assertThat((String) bad.json().get("detail")).contains("command");
            Http.Response value = Http.post(server.baseUrl() + "/actuators/ESP_CMD06/5/command", "{\"command\":\"PWM\",\"value\":1.5}");
            assertThat(value.status()).isEqualTo(400);
            assertThat((String) value.json().get("detail")).contains("value");
            assertThat(Http.post(server.baseUrl() + "/actuators/ESP_CMD06/5/command", "{\"command\":\"ON\",\"duration\":-1}").status()).isEqualTo(400);
            Http.Response malformed = Http.post(server.baseUrl() + "/actuators/ESP_CMD06/5/command", "{\"command\":");
            assertThat(malformed.status()).isEqualTo(400);
            assertThat(malformed.contentType()).startsWith("application/problem+json");
            assertThat(Http.post(server.baseUrl() + "/actuators/ESP_CMD06/5/command", "{\"command\":\"ON\"}", "text/plain").status()).isEqualTo(415);
            assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_CMD06/system-command", "{\"command\":\"self_destruct\"}").status()).isEqualTo(400);
            assertThat(Http.post(server.baseUrl() + "/commands/does-not-exist", null).status()).isIn(404, 405);
            assertThat(Http.get(server.baseUrl() + "/commands/does-not-exist").status()).isEqualTo(404);
        }
        // a pending device gets 409
        try (ScriptedDevice pending = new ScriptedDevice(server, server.mqttUrl(), "ESP_CMD07")) {
            Http.post(server.baseUrl() + "/esp/devices/ESP_CMD07/reject", "{\"reason\":\"test\"}");
            pending.announce(5);
            await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/esp/devices/ESP_CMD07").status() == 200);
            Http.post(server.baseUrl() + "/esp/devices/ESP_CMD07/reject", "{\"reason\":\"test\"}");
            // refused commands take nothing from the rate budget (burst 3), and the device's state wins over "too many"
            for (int i = 0; i < 6; i++) {
                assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_CMD07/system-command", "{\"command\":\"reboot\"}").status())
                        .as("command %d to a rejected device", i).isEqualTo(409);
            }
        }
    }

    @Test
    void should_limit_the_rate_per_device_and_type_with_429_and_retry_after() {
        try (ScriptedDevice dev = device("ESP_CMD08")) {
            int limited = 0;
            String retryAfter = null;
            for (int i = 0; i < 8; i++) {
                Http.Response r = Http.post(server.baseUrl() + "/sensors/ESP_CMD08/4/measure", null);
                if (r.status() == 429) {
                    limited++;
                    retryAfter = r.header("Retry-After");
                    assertThat(r.contentType()).startsWith("application/problem+json");
                } else {
                    assertThat(r.status()).isEqualTo(202);
                }
            }
            assertThat(limited).isGreaterThanOrEqualTo(4);
            assertThat(retryAfter).isNotNull();
            // another command type of the same device is not affected
            assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_CMD08/system-command", "{\"command\":\"status\"}").status()).isEqualTo(202);
            // refused commands give their share of the budget back: the burst of 3 is still there after them
            for (int i = 0; i < 5; i++) {
                assertThat(Http.post(server.baseUrl() + "/actuators/ESP_CMD08/7/command", "{\"command\":\"ON\"}").status()).isEqualTo(404);
            }
            for (int i = 0; i < 3; i++) {
                assertThat(Http.post(server.baseUrl() + "/actuators/ESP_CMD08/5/command", "{\"command\":\"ON\"}").status())
                        .as("actuator command %d after five refused", i).isEqualTo(202);
            }
        }
    }

    @Test
    void should_send_measure_and_system_commands_in_the_firmware_vocabulary() {
        try (ScriptedDevice dev = device("ESP_CMD09")) {
            Http.Response m = Http.post(server.baseUrl() + "/sensors/ESP_CMD09/4/measure", null, "Prefer", "wait=5");
            assertThat(m.status()).isEqualTo(200);
            assertThat(m.json()).containsEntry("status", "applied").containsEntry("answer_topic", "sensor-response");
            Http.Response s = Http.post(server.baseUrl() + "/esp/devices/ESP_CMD09/system-command",
                    "{\"command\":\"onewire/scan\",\"params\":{\"pin\":4}}", "Prefer", "wait=5");
            assertThat(s.status()).isEqualTo(200);
            assertThat(s.json()).containsEntry("status", "applied").containsEntry("answer_topic", "system-command-response");
            assertThat(dev.received()).extracting(c -> c.get("command")).containsExactly("measure", "onewire/scan");
            assertThat(dev.received().get(0)).containsKeys("correlation_id", "intent_id", "timestamp");
        }
    }
}
