package io.kaiser.integration;

import java.time.Duration;
import java.util.Map;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.MqttTestClient;
import io.kaiser.support.PrivateBroker;
import io.kaiser.support.ScriptedDevice;
import io.kaiser.support.ScriptedDevice.Mode;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/** Commands across a broker outage, a server restart and two server instances. */
class CommandResilienceIT {

    static String post(KaiserServer s, String path, String body) {
        Http.Response r = Http.post(s.baseUrl() + path, body);
        assertThat(r.status()).as(path + " " + r.body()).isEqualTo(202);
        return (String) r.json().get("correlation_id");
    }

    static String status(KaiserServer s, String id) {
        return (String) Http.get(s.baseUrl() + "/commands/" + id).json().get("status");
    }

    static boolean mqttUp(KaiserServer s) {
        return "UP".equals(((Map<?, ?>) Http.get(s.baseUrl() + "/health").json().get("mqtt")).get("status"));
    }

    @Test
    void should_send_queued_commands_in_order_after_a_broker_outage_and_never_send_an_expired_one() {
        try (PrivateBroker broker = new PrivateBroker().start()) {
            KaiserServer server = new KaiserServer("brokerdown", Map.of("kaiser.mqtt.url", broker.url(),
                    "kaiser.registration.auto-approve", "true", "kaiser.command.ttl.actuator", "2s")).start();
            try (ScriptedDevice dev = new ScriptedDevice(server, broker.url(), "ESP_OB1")) {
                await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
                dev.announce(5);
                await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/actuators/ESP_OB1/5/status").status() == 200);

                broker.stop();
                await().atMost(Duration.ofSeconds(15)).until(() -> !mqttUp(server));
                String stale = post(server, "/actuators/ESP_OB1/5/command", "{\"command\":\"ON\"}");
                await().atMost(Duration.ofSeconds(6)).until(() -> "expired".equals(status(server, stale)));
                String first = post(server, "/esp/devices/ESP_OB1/system-command", "{\"command\":\"status\"}");
                String second = post(server, "/esp/devices/ESP_OB1/system-command", "{\"command\":\"diagnostics\"}");
                String third = post(server, "/esp/devices/ESP_OB1/system-command", "{\"command\":\"get_config\"}");
                assertThat(Http.get(server.baseUrl() + "/commands/" + first).json().get("published_at")).isNull();

                broker.start();
                await().atMost(Duration.ofSeconds(30)).until(() -> "applied".equals(status(server, first))
                        && "applied".equals(status(server, second)) && "applied".equals(status(server, third)));
                assertThat(dev.received()).extracting(c -> c.get("command")).containsExactly("status", "diagnostics", "get_config");
                assertThat(status(server, stale)).isEqualTo("expired");
            } finally {
                server.stop();
            }
        }
    }

    @Test
    void should_resolve_commands_across_a_server_restart_from_the_outbox_and_from_answers_sent_while_it_was_down() {
        try (PrivateBroker broker = new PrivateBroker().start()) {
            KaiserServer server = new KaiserServer("cmdrestart", Map.of("kaiser.mqtt.url", broker.url(),
                    "kaiser.registration.auto-approve", "true", "kaiser.command.ack-timeout.system", "60s")).start();
            try (ScriptedDevice dev = new ScriptedDevice(server, broker.url(), "ESP_RS1");
                 MqttTestClient board = new MqttTestClient(broker.url())) {
                await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
                dev.announce(5);
                await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/esp/devices/ESP_RS1").status() == 200);

                // pending an ack when the server stops: the answer arrives while it is down
                dev.mode(Mode.SILENT);
                String pending = post(server, "/esp/devices/ESP_RS1/system-command", "{\"command\":\"status\"}");
                await().atMost(Duration.ofSeconds(5)).until(() -> dev.received().size() == 1);
                server.stop();
                board.publish(server.topic("ESP_RS1", "system/command/response"),
                        "{\"command\":\"status\",\"success\":true,\"correlation_id\":\"" + pending + "\"}", 1);

                // in the outbox when the server stops: the broker is away when it is issued
                server.start();
                await().atMost(Duration.ofSeconds(20)).until(() -> "applied".equals(status(server, pending)));
                dev.mode(Mode.ANSWER);
                broker.stop();
                await().atMost(Duration.ofSeconds(15)).until(() -> !mqttUp(server));
                String queued = post(server, "/esp/devices/ESP_RS1/system-command", "{\"command\":\"diagnostics\"}");
                server.stop();
                broker.start();
                // the device (clean start) must be back on its command topics before the outbox sends to it
                await().atMost(Duration.ofSeconds(20)).until(dev::subscribed);
                server.start();
                await().atMost(Duration.ofSeconds(30)).until(() -> "applied".equals(status(server, queued)));
                assertThat(dev.received()).extracting(c -> c.get("correlation_id")).containsExactly(pending, queued);
            } finally {
                server.stop();
            }
        }
    }

    @Test
    void should_complete_a_waiting_request_when_the_answer_reaches_the_other_instance() {
        KaiserServer a = new KaiserServer("twoinst", Map.of("kaiser.registration.auto-approve", "true"));
        KaiserServer b = new KaiserServer(a, "b", "kaiser-" + a.kaiserId());
        a.start();
        b.start();
        try (ScriptedDevice dev = new ScriptedDevice(a, a.mqttUrl(), "ESP_TWO1")) {
            await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(a.baseUrl() + "/health").status() == 200
                    && Http.get(b.baseUrl() + "/health").status() == 200);
            dev.announce(5);
            await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(a.baseUrl() + "/actuators/ESP_TWO1/5/status").status() == 200);
            for (int i = 0; i < 6; i++) {
                Http.Response r = Http.post(a.baseUrl() + "/esp/devices/ESP_TWO1/system-command", "{\"command\":\"status\"}", "Prefer", "wait=10");
                assertThat(r.status()).as(r.body()).isEqualTo(200);
                assertThat(r.json()).containsEntry("status", "applied");
            }
            // the shared subscription spread the answers: some were processed by instance b
            assertThat(a.count("SELECT count(*) FROM device_answers WHERE esp_id = 'ESP_TWO1' AND ingest_pos LIKE '" + b.instanceId() + ":%'"))
                    .isGreaterThan(0);
            assertThat(a.count("SELECT count(*) FROM device_answers WHERE esp_id = 'ESP_TWO1' AND topic_key = 'system-command-response'"))
                    .isEqualTo(6);
        } finally {
            b.stop();
            a.stop();
        }
    }
}
