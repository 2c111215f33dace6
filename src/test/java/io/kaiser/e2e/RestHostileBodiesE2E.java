package io.kaiser.e2e;

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.kaiser.support.E2eStack;
import io.kaiser.support.Heartbeats;
import io.kaiser.support.MqttTestClient;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Hostile input on REST: a seeded, generated set of a few thousand requests with malformed JSON, non-object JSON,
 * wrong types, SQL-looking and unicode strings, huge numbers, oversize bodies and wrong content types, against every
 * POST endpoint (device credentials excepted: the development broker has no dynamic-security plugin to answer them),
 * for a known online device and for hostile esp_ids in the path. Every answer is a 4xx with an
 * application/problem+json body, never a 5xx; the server stays healthy.
 */
@Tag("e2e")
class RestHostileBodiesE2E {
    static final ObjectMapper JSON = new ObjectMapper();
    static final long SEED = Long.getLong("kaiser.fuzz.seed", 20261126L);
    static final String ESP = "ESP_REST1";

    static final List<String> ENDPOINTS = List.of(
            "/esp/devices/{esp}/approve",
            "/esp/devices/{esp}/reject",
            "/auth/tokens",
            "/actuators/{esp}/5/command",
            "/sensors/{esp}/4/measure",
            "/esp/devices/{esp}/system-command",
            "/esp/devices/{esp}/config",
            "/zone/devices/{esp}/assign",
            "/subzone/devices/{esp}/subzones/assign",
            "/subzone/devices/{esp}/subzones/sz1/safe-mode",
            "/actuators/emergency_stop",
            "/actuators/clear_emergency");

    static final List<String> FIELDS = List.of("command", "value", "duration", "params", "sensors", "actuators", "offline_rules",
            "zone_id", "master_zone_id", "subzone_id", "assigned_gpios", "reason", "esp_id", "gpio", "name", "role", "enabled");

    record Req(String path, String body, String contentType, String kind) { }

    @Test
    void should_answer_every_hostile_body_with_a_4xx_problem_and_never_a_5xx() throws Exception {
        FaultFigures figures = new FaultFigures("rest-hostile");
        try (E2eStack stack = new E2eStack("e2erest", Map.of("kaiser.registration.auto-approve", "true")).start();
             MqttTestClient device = new MqttTestClient(stack.broker().url())) {
            device.publish(stack.topic(ESP, "system/heartbeat"), Heartbeats.original(ESP), 0);
            await().atMost(Duration.ofSeconds(20)).until(() -> stack.count("SELECT count(*) FROM devices WHERE esp_id = '" + ESP + "' AND status = 'online'") == 1);

            List<Req> requests = generate(new Random(SEED));
            HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            Map<Integer, Long> statuses = new TreeMap<>();
            Map<String, Long> kinds = new TreeMap<>();
            List<String> violations = new ArrayList<>();
            List<Long> latencies = new ArrayList<>();
            long start = System.nanoTime();
            for (Req r : requests) {
                HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(stack.baseUrl() + r.path())).timeout(Duration.ofSeconds(20))
                        .POST(HttpRequest.BodyPublishers.ofString(r.body(), StandardCharsets.UTF_8));
                if (r.contentType() != null) {
                    b.header("Content-Type", r.contentType());
                }
                long t = System.nanoTime();
                HttpResponse<String> resp = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
                latencies.add((System.nanoTime() - t) / 1_000_000);
                statuses.merge(resp.statusCode(), 1L, Long::sum);
                kinds.merge(r.kind(), 1L, Long::sum);
                String type = resp.headers().firstValue("Content-Type").orElse("");
                boolean problem = type.startsWith("application/problem+json") && isProblem(resp.body(), resp.statusCode());
                if (resp.statusCode() < 400 || resp.statusCode() >= 500 || !problem) {
                    if (violations.size() < 50) {
                        violations.add(resp.statusCode() + " " + type + " " + r.kind() + " POST " + r.path() + " ["
                                + abbreviate(r.body()) + "] -> " + abbreviate(resp.body()));
                    } else if (violations.size() == 50) {
                        violations.add("...");
                    }
                }
            }
            long ms = (System.nanoTime() - start) / 1_000_000;
            Map<String, Object> health = io.kaiser.support.Http.get(stack.baseUrl() + "/health").json();
            figures.put("seed", SEED)
                    .put("requests", requests.size())
                    .put("endpoints", ENDPOINTS.size())
                    .put("kinds", kinds)
                    .put("statuses", statuses)
                    .put("violations", violations.size())
                    .put("wall_ms", ms)
                    .put("latency_median_ms", FaultFigures.median(latencies))
                    .put("latency_max_ms", latencies.stream().mapToLong(Long::longValue).max().orElse(-1))
                    .write();
            violations.forEach(System.out::println);
            assertThat(violations).as("answers that are not a 4xx problem+json").isEmpty();
            assertThat(health).containsEntry("status", "UP");
            // nothing hostile was executed: no command, no emergency
            assertThat(stack.count("SELECT count(*) FROM commands")).isZero();
            assertThat(stack.count("SELECT count(*) FROM emergency_incidents")).isZero();
        }
    }

    static boolean isProblem(String body, int status) {
        try {
            Map<?, ?> m = JSON.readValue(body, Map.class);
            return m.get("title") != null && (m.get("status") == null || ((Number) m.get("status")).intValue() == status);
        } catch (Exception e) {
            return false;
        }
    }

    static List<Req> generate(Random random) {
        List<Req> out = new ArrayList<>();
        String[] hostileIds = {"ESP'; DROP TABLE devices;--", "ESP\" OR \"1\"=\"1", "ЕSP01", "ESP%00", "E".repeat(300), "..", "ESP 01",
                "ESP<script>", "\u202eESP", "ESP🌱"};
        for (String endpoint : ENDPOINTS) {
            for (int i = 0; i < 250; i++) {
                String path = endpoint.replace("{esp}", ESP);
                String contentType = "application/json";
                String kind;
                String body;
                int k = random.nextInt(11);
                switch (k) {
                    case 0 -> {
                        kind = "malformed_json";
                        String[] m = {"{", "{\"command\":", "[1,2", "nul", "{\"a\":1}}", "{'command':'ON'}", "{\"command\":\"ON\",}",
                                "{\"value\":NaN}", "{\"value\":01}", "\u0000", "{\"a\":\"\\x\"}"};
                        body = m[random.nextInt(m.length)];
                    }
                    case 1 -> {
                        kind = "not_an_object";
                        String[] m = {"[]", "\"ON\"", "42", "null", "true", "[{\"command\":\"ON\"}]"};
                        body = m[random.nextInt(m.length)];
                    }
                    case 2 -> {
                        kind = "wrong_types";
                        Object[] values = {5, "x", List.of(1, 2), Map.of("a", 1), true, -1, 1.5, ""};
                        Map<String, Object> fields = new TreeMap<>();
                        for (String f : FIELDS) {
                            fields.put(f, values[random.nextInt(values.length)]);
                        }
                        // at least one field that no endpoint accepts in that type
                        fields.put("command", List.of("ON"));
                        fields.put("zone_id", Map.of("$ne", 1));
                        fields.put("reason", List.of());
                        fields.put("name", 7);
                        fields.put("sensors", "all");
                        fields.put("enabled", "yes");
                        body = json(fields);
                    }
                    case 3 -> {
                        kind = "sql_strings";
                        String sql = random.nextBoolean() ? "ON'; DROP TABLE commands;--" : "1 OR 1=1; SELECT pg_sleep(10)";
                        Map<String, Object> fields = new TreeMap<>();
                        fields.put("command", sql);
                        fields.put("value", sql);
                        fields.put("zone_id", List.of(sql));
                        fields.put("reason", Map.of("sql", sql));
                        fields.put("sensors", sql);
                        fields.put("subzone_id", 1);
                        fields.put("name", List.of(sql));
                        fields.put("enabled", sql);
                        body = json(fields);
                    }
                    case 4 -> {
                        kind = "huge_numbers";
                        String big = random.nextBoolean() ? "1" + "0".repeat(400) : "1e999";
                        body = "{\"command\":" + big + ",\"value\":" + big + ",\"duration\":" + big + ",\"gpio\":" + big + ",\"zone_id\":" + big
                                + ",\"reason\":" + big + ",\"sensors\":" + big + ",\"subzone_id\":" + big + ",\"name\":" + big + ",\"enabled\":" + big + "}";
                    }
                    case 5 -> {
                        kind = "oversize";
                        body = "{\"reason\":\"" + "x".repeat(70_000 + random.nextInt(200_000)) + "\"}";
                    }
                    case 6 -> {
                        kind = "wrong_content_type";
                        String[] types = {"text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x", null};
                        contentType = types[random.nextInt(types.length)];
                        body = contentType != null && contentType.startsWith("application/x-www") ? "command=ON&value=1" : "{\"command\":\"ON\",\"value\":1,\"reason\":\"x\"}";
                    }
                    case 7 -> {
                        kind = "unicode";
                        String[] u = {"ÖN", "ＯＮ", "O\u0000N", "\uD83D\uDE00", "on\u200b", "ОN", "\u202eNO"};
                        String s = u[random.nextInt(u.length)];
                        body = "{\"command\":\"" + s + "\",\"value\":\"" + s + "\",\"zone_id\":" + random.nextInt() + ",\"reason\":[\"" + s
                                + "\"],\"sensors\":\"" + s + "\",\"subzone_id\":[],\"name\":{},\"enabled\":\"" + s + "\"}";
                    }
                    case 8 -> {
                        kind = "hostile_path_id";
                        String id = hostileIds[random.nextInt(hostileIds.length)];
                        if (!endpoint.contains("{esp}")) {
                            body = "{\"esp_id\":" + JSON_QUOTE(id) + ",\"reason\":{}}";
                        } else {
                            path = endpoint.replace("{esp}", URLEncoder.encode(id, StandardCharsets.UTF_8).replace("+", "%20"));
                            body = "{\"command\":\"ON\",\"value\":1,\"reason\":\"x\",\"zone_id\":\"z\"}";
                        }
                    }
                    case 9 -> {
                        kind = "hostile_path_gpio";
                        String[] g = {"99999999999999999999", "-1", "49", "x", "1e3", "%20", "5%27"};
                        String gpio = g[random.nextInt(g.length)];
                        path = endpoint.replace("{esp}", ESP).replace("/5/", "/" + gpio + "/").replace("/4/", "/" + gpio + "/");
                        if (path.equals(endpoint.replace("{esp}", ESP))) {
                            body = "{\"esp_id\":" + random.nextDouble() + ",\"reason\":5}";
                        } else {
                            body = "{\"command\":\"ON\",\"value\":1}";
                        }
                    }
                    default -> {
                        kind = "deep_nesting";
                        int depth = 1000 + random.nextInt(5000);
                        body = "{\"command\":" + "[".repeat(depth) + "]".repeat(depth) + "}";
                    }
                }
                out.add(new Req(path, body, contentType, kind));
            }
        }
        return out;
    }

    static String JSON_QUOTE(String s) {
        try {
            return JSON.writeValueAsString(s);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String abbreviate(String s) {
        return s.length() > 160 ? s.substring(0, 160) + "..." : s;
    }
}
