package io.kaiser.integration;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import io.kaiser.command.CommandTrace;
import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.LiveClient;
import io.kaiser.support.ScriptedDevice;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * W3C trace context on the command path (issue #7 item 6): the REST request's traceparent (or a new one) is stored with
 * the command, published as MQTT 5 user property and payload field, returned by REST, logged and in the live event.
 */
class TracingIT {
    static final String FORMAT = "00-[0-9a-f]{32}-[0-9a-f]{16}-01";
    static KaiserServer server;
    static ListAppender<ILoggingEvent> log = new ListAppender<>();

    @BeforeAll
    static void start() {
        server = new KaiserServer("tracing", Map.of("kaiser.registration.auto-approve", "true")).start();
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
        log.start();
        ((Logger) LoggerFactory.getLogger("kaiser.commands")).addAppender(log);
    }

    @AfterAll
    static void stop() {
        ((Logger) LoggerFactory.getLogger("kaiser.commands")).detachAppender(log);
        server.stop();
    }

    static ScriptedDevice device(String esp) {
        ScriptedDevice d = new ScriptedDevice(server, server.mqttUrl(), esp);
        d.announce(5);
        await().atMost(Duration.ofSeconds(5)).until(() -> Http.get(server.baseUrl() + "/actuators/" + esp + "/5/status").status() == 200);
        return d;
    }

    @Test
    @SuppressWarnings("unchecked")
    void should_carry_the_request_traceparent_to_the_device_the_database_rest_logs_and_live_events() {
        String tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        try (ScriptedDevice dev = device("ESP_TRACE1");
             LiveClient live = new LiveClient(server.wsUrl() + "?types=actuator_command&esp_ids=ESP_TRACE1")) {
            Http.Response r = Http.post(server.baseUrl() + "/actuators/ESP_TRACE1/5/command", "{\"command\":\"ON\"}",
                    "traceparent", tp, "Prefer", "wait=5");
            assertThat(r.status()).isEqualTo(200);
            assertThat(r.json()).containsEntry("traceparent", tp).containsEntry("status", "applied");
            String id = (String) r.json().get("correlation_id");

            // the device: MQTT 5 user property and, for 3.1.1 firmware, the payload field
            assertThat(dev.received()).hasSize(1);
            Map<String, Object> sent = dev.received().get(0);
            assertThat(sent).containsEntry("traceparent", tp).containsEntry("correlation_id", id);
            assertThat((Map<String, String>) sent.get("_user_properties")).containsEntry("traceparent", tp);

            assertThat(Http.get(server.baseUrl() + "/commands/" + id).json()).containsEntry("traceparent", tp);
            assertThat(server.query("SELECT traceparent FROM commands WHERE correlation_id = '" + id + "'").get(0))
                    .containsEntry("traceparent", tp);

            Map<String, Object> event = live.await(e -> id.equals(LiveClient.data(e).get("correlation_id")), Duration.ofSeconds(5));
            assertThat(event).as("live actuator_command event").isNotNull();
            assertThat(LiveClient.data(event)).containsEntry("traceparent", tp);

            // stored, published and answered: each log line names the traceparent
            await().atMost(Duration.ofSeconds(5)).untilAsserted(() -> {
                List<String> lines = log.list.stream().map(ILoggingEvent::getFormattedMessage).filter(m -> m.contains(id)).toList();
                assertThat(lines).anySatisfy(l -> assertThat(l).contains("stored").contains(tp))
                        .anySatisfy(l -> assertThat(l).contains("published").contains(tp))
                        .anySatisfy(l -> assertThat(l).contains("answered").contains(tp));
            });
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void should_start_a_trace_when_the_request_has_none_or_an_invalid_one() {
        try (ScriptedDevice dev = device("ESP_TRACE2")) {
            Http.Response none = Http.post(server.baseUrl() + "/actuators/ESP_TRACE2/5/command", "{\"command\":\"ON\"}");
            assertThat(none.status()).isEqualTo(202);
            String created = (String) none.json().get("traceparent");
            assertThat(created).matches(FORMAT);

            Http.Response invalid = Http.post(server.baseUrl() + "/actuators/ESP_TRACE2/5/command", "{\"command\":\"OFF\"}",
                    "traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
            String replaced = (String) invalid.json().get("traceparent");
            assertThat(replaced).matches(FORMAT).isNotEqualTo(created);

            await().atMost(Duration.ofSeconds(5)).until(() -> dev.received().size() == 2);
            assertThat(dev.received()).extracting(m -> m.get("traceparent")).containsExactly(created, replaced);
            assertThat(dev.received()).extracting(m -> ((Map<String, String>) m.get("_user_properties")).get("traceparent"))
                    .containsExactly(created, replaced);
        }
    }

    @Test
    void should_validate_traceparent_values() {
        assertThat(CommandTrace.valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).isNotNull();
        assertThat(CommandTrace.valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01")).isNull();
        assertThat(CommandTrace.valid("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).isNull();
        assertThat(CommandTrace.valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")).isNull();
        assertThat(CommandTrace.valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"))
                .isEqualTo("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assertThat(CommandTrace.valid("garbage")).isNull();
        assertThat(CommandTrace.create()).matches(FORMAT);
        assertThat(CommandTrace.traceId("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
                .isEqualTo("4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
