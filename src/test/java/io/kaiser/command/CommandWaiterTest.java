package io.kaiser.command;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

import io.kaiser.KaiserHeaders;
import org.apache.camel.Exchange;
import org.apache.camel.impl.DefaultCamelContext;
import org.apache.camel.support.DefaultExchange;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Unit test of the order in which a waiting request and its command's end meet. The waiter has no database here: a
 * request answered from the view its command's answer returned must not read the command again.
 */
class CommandWaiterTest {
    final DefaultCamelContext camel = new DefaultCamelContext();
    final CommandWaiter waiter = new CommandWaiter(null, null, 30, 2);

    @AfterEach
    void stop() {
        waiter.stop();
    }

    Exchange request(String correlationId, String prefer) {
        Exchange e = new DefaultExchange(camel);
        e.getMessage().setHeader("Prefer", prefer);
        e.setProperty(KaiserHeaders.COMMAND, new Command(correlationId, "ESP_W1", "actuator", "t", 2, "{}", false, null));
        return e;
    }

    static Map<String, Object> applied(String correlationId) {
        return Map.of("correlation_id", correlationId, "status", "applied");
    }

    @Test
    void should_answer_a_request_whose_command_ended_before_it_was_parked() {
        Exchange e = request("c-early", "wait=5");
        waiter.expect(e);
        // the device answered between the publish and the request reaching the waiter
        waiter.ended(applied("c-early"));
        AtomicBoolean done = new AtomicBoolean();
        waiter.process(e, sync -> done.set(true));

        await().atMost(Duration.ofSeconds(2)).untilTrue(done);
        assertThat(e.getException()).isNull();
        assertThat(e.getMessage().getHeader(Exchange.HTTP_RESPONSE_CODE)).isEqualTo(200);
        assertThat(e.getMessage().getBody(Map.class)).containsEntry("status", "applied");
        assertThat(e.getMessage().getHeader("Preference-Applied")).isEqualTo("wait=5");
        assertThat(waiter.waitingCommands()).isZero();
    }

    @Test
    void should_answer_every_request_waiting_for_the_same_command_and_keep_nothing() {
        Exchange first = request("c-shared", "wait=5");
        Exchange replay = request("c-shared", "respond-async, wait=5");
        waiter.expect(first);
        waiter.expect(replay);
        AtomicBoolean firstDone = new AtomicBoolean();
        AtomicBoolean replayDone = new AtomicBoolean();
        assertThat(waiter.process(first, sync -> firstDone.set(true))).isFalse();
        assertThat(waiter.process(replay, sync -> replayDone.set(true))).isFalse();
        assertThat(waiter.waitingCommands()).isEqualTo(1);

        waiter.ended(applied("c-shared"));

        await().atMost(Duration.ofSeconds(2)).until(() -> firstDone.get() && replayDone.get());
        assertThat(first.getMessage().getHeader(Exchange.HTTP_RESPONSE_CODE)).isEqualTo(200);
        assertThat(replay.getMessage().getHeader(Exchange.HTTP_RESPONSE_CODE)).isEqualTo(200);
        assertThat(waiter.waitingCommands()).isZero();
    }

    @Test
    void should_register_nothing_for_a_request_that_does_not_wait() {
        Exchange e = request("c-nowait", null);
        waiter.expect(e);
        assertThat(waiter.waitingCommands()).isZero();
        assertThat(e.getProperty("kaiserWaiting")).isNull();
        // nothing waits, so an end finds nobody (and reads nothing)
        waiter.ended(applied("c-nowait"));
        assertThat(waiter.waitingCommands()).isZero();
    }

    @Test
    void should_answer_each_request_once_while_registrations_ends_and_answers_interleave() throws Exception {
        // the real order per command: registered (before the publish), then ended (the device's answer) and parked
        // (the request reaching the waiter) in either order, on different threads, many commands at once
        int n = 2000;
        Exchange[] requests = new Exchange[n];
        java.util.concurrent.atomic.AtomicInteger[] answers = new java.util.concurrent.atomic.AtomicInteger[n];
        java.util.concurrent.BlockingQueue<Integer> registered = new java.util.concurrent.LinkedBlockingQueue<>();
        java.util.concurrent.BlockingQueue<Integer> toPark = new java.util.concurrent.LinkedBlockingQueue<>();
        Thread ender = new Thread(() -> {
            try {
                for (int i = 0; i < n; i++) {
                    int k = registered.take();
                    waiter.ended(applied("c-" + k));
                }
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        });
        Thread parker = new Thread(() -> {
            try {
                for (int i = 0; i < n; i++) {
                    int k = toPark.take();
                    waiter.process(requests[k], sync -> answers[k].incrementAndGet());
                }
            } catch (InterruptedException ignored) {
                Thread.currentThread().interrupt();
            }
        });
        ender.start();
        parker.start();
        for (int i = 0; i < n; i++) {
            requests[i] = request("c-" + i, "wait=10");
            answers[i] = new java.util.concurrent.atomic.AtomicInteger();
            waiter.expect(requests[i]);
            registered.add(i);
            toPark.add(i);
        }
        ender.join();
        parker.join();
        await().atMost(Duration.ofSeconds(5)).until(() -> java.util.Arrays.stream(answers).allMatch(a -> a.get() == 1));
        for (Exchange e : requests) {
            assertThat(e.getMessage().getHeader(Exchange.HTTP_RESPONSE_CODE)).isEqualTo(200);
        }
        assertThat(waiter.waitingCommands()).isZero();
    }
}
