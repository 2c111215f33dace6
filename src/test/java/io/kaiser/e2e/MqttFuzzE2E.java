package io.kaiser.e2e;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import io.kaiser.support.E2eStack;
import io.kaiser.support.Heartbeats;
import io.kaiser.support.Http;
import io.kaiser.support.MqttTestClient;
import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttActionListener;
import org.eclipse.paho.mqttv5.client.MqttAsyncClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Hostile input: a seeded, reproducible fuzzer sends 100,000 generated MQTT payloads (malformed and truncated JSON,
 * random bytes, huge numbers, wrong types, unicode, oversize, esp_id of the payload differing from the topic, bad
 * characters in the topic's esp_id and gpio, devices the server never saw, empty payloads) mixed with valid
 * readings (80 % valid, as hostile input hides in real traffic). The server stays up; every valid reading is stored once (counted by seq), every invalid message is in
 * dead_letters with a reason, and the counts match exactly. Publishing is QoS 1 and paced by a window against the
 * server's received counter so that Mosquitto's queue for the server (max_queued_messages 1000) never overflows;
 * the broker's own drop counter ($SYS) is recorded and must be 0.
 *
 * Seed and size: -Dkaiser.fuzz.seed=..., -Dkaiser.fuzz.messages=....
 */
@Tag("e2e")
class MqttFuzzE2E {
    static final long SEED = Long.getLong("kaiser.fuzz.seed", 20261126L);
    static final int MESSAGES = Integer.getInteger("kaiser.fuzz.messages", 100_000);
    static final int MAX_PAYLOAD = 16_384;
    static final int DEVICES = 8;
    static final int PUBLISHERS = 4;
    static final int WINDOW = 600;
    static final long HUGE_SEQ = 10_000_000L;

    @Test
    void should_store_every_valid_message_and_dead_letter_every_invalid_one_of_100000_fuzzed_payloads() throws Exception {
        FaultFigures figures = new FaultFigures("mqtt-fuzz");
        try (E2eStack stack = new E2eStack("e2efuzz", Map.of(
                "kaiser.registration.auto-approve", "true",
                "kaiser.ingest.max-payload-bytes", Integer.toString(MAX_PAYLOAD))).start();
             MqttTestClient sys = new MqttTestClient(stack.broker().url())) {
            sys.subscribe("$SYS/broker/publish/messages/dropped", 0);
            for (int d = 0; d < DEVICES; d++) {
                sys.publish(stack.topic(esp(d), "system/heartbeat"), Heartbeats.original(esp(d)), 0);
            }
            await().atMost(Duration.ofSeconds(20)).until(() -> stack.count("SELECT count(*) FROM devices WHERE status = 'online'") == DEVICES);
            long receivedBefore = received(stack);

            MqttAsyncClient[] clients = new MqttAsyncClient[PUBLISHERS];
            Semaphore[] inflight = new Semaphore[PUBLISHERS];
            for (int i = 0; i < PUBLISHERS; i++) {
                clients[i] = new MqttAsyncClient(stack.broker().url(), "fuzzer-" + i, new MemoryPersistence());
                MqttConnectionOptions o = new MqttConnectionOptions();
                o.setReceiveMaximum(20);
                clients[i].connect(o).waitForCompletion(10_000);
                inflight[i] = new Semaphore(20);
            }
            AtomicLong failed = new AtomicLong();
            Random random = new Random(SEED);
            long tsBase = System.currentTimeMillis() - 6 * 3_600_000L;
            int[] validSeq = new int[DEVICES];
            long valid = 0;
            long huge = 0;
            Map<String, Long> kinds = new TreeMap<>();
            long start = System.nanoTime();
            long windowWaits = 0;
            long serverReceived = receivedBefore;
            for (int n = 0; n < MESSAGES; n++) {
                if (n - (serverReceived - receivedBefore) >= WINDOW) {
                    // the window is full: wait until the server has taken enough off the broker's queue
                    long sent = n;
                    long[] r = {serverReceived};
                    await().atMost(Duration.ofSeconds(60)).pollDelay(Duration.ZERO).pollInterval(Duration.ofMillis(20)).until(() -> {
                        r[0] = received(stack);
                        return sent - (r[0] - receivedBefore) < WINDOW / 2;
                    });
                    serverReceived = r[0];
                    windowWaits++;
                }
                int d = random.nextInt(DEVICES);
                String esp = esp(d);
                int gpio = random.nextInt(49);
                long ts = tsBase + n;
                String topic = stack.topic(esp, "sensor/" + gpio + "/data");
                String kind;
                byte[] payload;
                int k = random.nextInt(100);
                if (k < 80) {
                    kind = k < 72 ? "valid" : "valid_unicode";
                    String type = k < 72 ? "ds18b20" : "ds18b20_" + unicode(random, 1 + random.nextInt(8));
                    payload = reading(esp, gpio, type, random.nextInt(4096), ts, validSeq[d]++).getBytes(StandardCharsets.UTF_8);
                    valid++;
                } else if (k < 83) {
                    kind = "huge_number_raw";
                    String big = random.nextBoolean() ? "1" + "0".repeat(20 + random.nextInt(300)) : "1e" + (300 + random.nextInt(100));
                    payload = reading(esp, gpio, "ds18b20", 0, ts, HUGE_SEQ + n).replace("\"raw\":0", "\"raw\":" + big).getBytes(StandardCharsets.UTF_8);
                    huge++;
                } else {
                    String good = reading(esp, gpio, "ds18b20", random.nextInt(4096), ts, -1);
                    switch (k % 13) {
                        case 0 -> { kind = "truncated_json"; payload = good.substring(0, 1 + random.nextInt(good.length() - 2)).getBytes(StandardCharsets.UTF_8); }
                        case 1 -> { kind = "random_bytes"; payload = bytes(random, 1 + random.nextInt(400)); }
                        case 2 -> { kind = "huge_gpio"; payload = good.replace("\"gpio\":" + gpio, "\"gpio\":" + "9".repeat(10 + random.nextInt(40))).getBytes(StandardCharsets.UTF_8); }
                        case 3 -> {
                            kind = "wrong_type";
                            String[] swaps = {"\"gpio\":\"" + gpio + "\"", "\"gpio\":null", "\"gpio\":[" + gpio + "]", "\"gpio\":true"};
                            payload = good.replace("\"gpio\":" + gpio, swaps[random.nextInt(swaps.length)]).getBytes(StandardCharsets.UTF_8);
                        }
                        case 4 -> { kind = "wrong_type_sensor_type"; payload = good.replace("\"sensor_type\":\"ds18b20\"", "\"sensor_type\":" + random.nextInt()).getBytes(StandardCharsets.UTF_8); }
                        case 5 -> {
                            kind = "oversize";
                            payload = good.replace("\"unit\"", "\"note\":\"" + "x".repeat(MAX_PAYLOAD + random.nextInt(40_000)) + "\",\"unit\"").getBytes(StandardCharsets.UTF_8);
                        }
                        case 6 -> { kind = "esp_id_mismatch"; payload = good.replace("\"esp_id\":\"" + esp + "\"", "\"esp_id\":\"" + esp(d + 1 + random.nextInt(5)) + "\"").getBytes(StandardCharsets.UTF_8); }
                        case 7 -> {
                            kind = "esp_id_injection_in_payload";
                            String[] evil = {esp + "\\\",\\\"gpio\\\":5", esp + "'; DROP TABLE sensor_data;--", esp + "/+/#", "\u202e" + esp, esp + "\\u0000"};
                            payload = good.replace("\"esp_id\":\"" + esp + "\"", "\"esp_id\":\"" + evil[random.nextInt(evil.length)] + "\"").getBytes(StandardCharsets.UTF_8);
                        }
                        case 8 -> {
                            kind = "bad_esp_id_in_topic";
                            String[] evil = {"ESP'01", "ESP 01", "ESP;DROP", "ESP\"01", "ESP%2F01", "ЕSP01", "ESP\u00e901", "E".repeat(33), "ESP.01", "ESP$01"};
                            String bad = evil[random.nextInt(evil.length)];
                            topic = stack.topic(bad, "sensor/" + gpio + "/data");
                            payload = good.replace("\"esp_id\":\"" + esp + "\"", "\"esp_id\":\"" + bad.replace("\"", "\\\"") + "\"").getBytes(StandardCharsets.UTF_8);
                        }
                        case 9 -> {
                            kind = "bad_gpio_in_topic";
                            String[] evil = {"x", "-1", "49", "4.0", "0x04", "٤", "99999999999", "4 ", "%34"};
                            topic = stack.topic(esp, "sensor/" + evil[random.nextInt(evil.length)] + "/data");
                            payload = good.getBytes(StandardCharsets.UTF_8);
                        }
                        case 10 -> {
                            kind = "unknown_device";
                            String stranger = "FZX" + random.nextInt(1000);
                            topic = stack.topic(stranger, "sensor/" + gpio + "/data");
                            payload = good.replace("\"esp_id\":\"" + esp + "\"", "\"esp_id\":\"" + stranger + "\"").getBytes(StandardCharsets.UTF_8);
                        }
                        case 11 -> {
                            kind = random.nextBoolean() ? "empty" : "not_an_object";
                            payload = kind.equals("empty") ? new byte[0] : (random.nextBoolean() ? "[" + good + "]" : "\"" + unicode(random, 5) + "\"").getBytes(StandardCharsets.UTF_8);
                        }
                        default -> { kind = "invalid_utf8_and_nul"; payload = ("\u0000" + good).getBytes(StandardCharsets.UTF_8); payload[payload.length / 2] = (byte) 0xC3; }
                    }
                }
                kinds.merge(kind, 1L, Long::sum);
                int c = n % PUBLISHERS;
                Semaphore s = inflight[c];
                if (!s.tryAcquire(30, TimeUnit.SECONDS)) {
                    throw new AssertionError("no PUBACK for 30 s");
                }
                MqttMessage m = new MqttMessage(payload);
                m.setQos(1);
                clients[c].publish(topic, m, null, new MqttActionListener() {
                    public void onSuccess(IMqttToken t) {
                        s.release();
                    }

                    public void onFailure(IMqttToken t, Throwable e) {
                        failed.incrementAndGet();
                        s.release();
                    }
                });
            }
            for (int i = 0; i < PUBLISHERS; i++) {
                assertThat(inflight[i].tryAcquire(20, 60, TimeUnit.SECONDS)).isTrue();
            }
            long publishMs = (System.nanoTime() - start) / 1_000_000;
            assertThat(failed.get()).as("publishes the broker did not acknowledge").isZero();
            long invalid = MESSAGES - valid - huge;

            long[] receivedAllMs = {-1};
            await().atMost(Duration.ofSeconds(420)).pollInterval(Duration.ofMillis(500)).until(() -> {
                if (receivedAllMs[0] < 0 && received(stack) - receivedBefore >= MESSAGES) {
                    receivedAllMs[0] = (System.nanoTime() - start) / 1_000_000;
                }
                return receivedAllMs[0] >= 0 && backlog(stack) == 0
                        && stack.count("SELECT count(*) FROM sensor_data") + stack.count("SELECT count(*) FROM dead_letters") >= MESSAGES;
            });
            long totalMs = (System.nanoTime() - start) / 1_000_000;
            long rows = stack.count("SELECT count(*) FROM sensor_data");
            long validRows = stack.count("SELECT count(*) FROM sensor_data WHERE seq < " + HUGE_SEQ);
            long hugeRows = stack.count("SELECT count(*) FROM sensor_data WHERE seq >= " + HUGE_SEQ);
            long deadLetters = stack.count("SELECT count(*) FROM dead_letters");
            Map<String, Long> reasons = new TreeMap<>();
            stack.query("SELECT reason_code, count(*) AS n FROM dead_letters GROUP BY reason_code")
                    .forEach(r -> reasons.put((String) r.get("reason_code"), ((Number) r.get("n")).longValue()));
            Map<String, Object> health = Http.get(stack.baseUrl() + "/health").json();
            MqttTestClient.Received dropped = sys.next("$SYS/broker/publish/messages/dropped", Duration.ofSeconds(12));
            figures.put("seed", SEED)
                    .put("messages", MESSAGES)
                    .put("valid", valid)
                    .put("invalid", invalid)
                    .put("huge_number_raw", huge)
                    .put("huge_number_raw_stored", hugeRows)
                    .put("kinds", kinds)
                    .put("dead_letter_reasons", reasons)
                    .put("publish_ms", publishMs)
                    .put("all_received_by_server_ms", receivedAllMs[0])
                    .put("all_processed_ms", totalMs)
                    .put("throughput_msgs_per_s", MESSAGES * 1000L / Math.max(1, totalMs))
                    .put("window_waits", windowWaits)
                    .put("broker_dropped_sys", dropped == null ? "n/a" : dropped.payload())
                    .write();

            assertThat(health).containsEntry("status", "UP");
            assertThat(validRows).as("valid readings stored").isEqualTo(valid);
            assertThat(stack.count("SELECT count(DISTINCT (esp_id, seq)) FROM sensor_data WHERE seq < " + HUGE_SEQ)).as("each once").isEqualTo(valid);
            for (int d = 0; d < DEVICES; d++) {
                assertThat(stack.count("SELECT count(*) FROM sensor_data WHERE esp_id = '" + esp(d) + "' AND seq < " + HUGE_SEQ))
                        .as("readings of " + esp(d)).isEqualTo(validSeq[d]);
            }
            assertThat(deadLetters).as("dead letters = invalid + huge numbers not stored").isEqualTo(invalid + huge - hugeRows);
            assertThat(rows + deadLetters).as("every message accounted for once").isEqualTo(MESSAGES);
            assertThat(stack.count("SELECT count(*) FROM dead_letters WHERE reason IS NULL OR reason = '' OR reason_code IS NULL")).isZero();
            assertThat(stack.count("SELECT count(*) FROM sensor_data WHERE raw_value IN ('Infinity', '-Infinity', 'NaN')"
                    + " OR value IN ('Infinity', '-Infinity', 'NaN')")).as("numbers that are no numbers stored").isZero();
            if (dropped != null) {
                assertThat(dropped.payload()).as("broker drops").isEqualTo("0");
            }
            for (MqttAsyncClient client : clients) {
                client.disconnect().waitForCompletion(5000);
                client.close();
            }
        }
    }

    static String esp(int d) {
        return String.format("FZ%02d", d % DEVICES);
    }

    static String reading(String esp, int gpio, String type, long raw, long tsMillis, long seq) {
        return "{\"esp_id\":\"" + esp + "\",\"gpio\":" + gpio + ",\"sensor_type\":\"" + type + "\",\"raw\":" + raw
                + ",\"value\":1.0,\"unit\":\"°C\",\"quality\":\"good\",\"ts\":" + tsMillis + ",\"raw_mode\":true"
                + (seq >= 0 ? ",\"seq\":" + seq : "") + "}";
    }

    static String unicode(Random random, int n) {
        int[] pool = {0x00e9, 0x00fc, 0x03a9, 0x2192, 0x4e2d, 0x6587, 0x0416, 0x1F600, 0x1F331, 0x0627, 0x05D0, 0x200B};
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) {
            b.appendCodePoint(pool[random.nextInt(pool.length)]);
        }
        return b.toString();
    }

    static byte[] bytes(Random random, int n) {
        byte[] b = new byte[n];
        random.nextBytes(b);
        return b;
    }

    static long received(E2eStack stack) {
        return ((Number) ((Map<?, ?>) Http.get(stack.baseUrl() + "/health").json().get("ingest")).get("received")).longValue();
    }

    static long backlog(E2eStack stack) {
        return ((Number) ((Map<?, ?>) Http.get(stack.baseUrl() + "/health").json().get("ingest")).get("backlog_bytes")).longValue();
    }
}
