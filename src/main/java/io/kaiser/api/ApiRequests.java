package io.kaiser.api;

import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.camel.Exchange;
import org.apache.camel.Message;
import org.postgresql.util.PGobject;

/**
 * Checks REST input (path and query parameters, JSON bodies) and shapes database rows into responses.
 * Every bad input becomes an {@link ApiProblem} with a 4xx status; routes turn it into problem+json.
 */
public final class ApiRequests {
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static final TypeReference<LinkedHashMap<String, Object>> MAP = new TypeReference<>() { };

    private final Pattern espIdPattern;
    private final int maxGpio;
    private final int defaultLimit;
    private final int maxLimit;

    public ApiRequests(String espIdPattern, int maxGpio, int defaultLimit, int maxLimit) {
        this.espIdPattern = Pattern.compile(espIdPattern);
        this.maxGpio = maxGpio;
        this.defaultLimit = defaultLimit;
        this.maxLimit = maxLimit;
    }

    /** Validates {esp_id} (and {gpio} when present) path parameters in place. */
    public void pathParams(Exchange exchange) {
        Message m = exchange.getMessage();
        m.setHeader("esp_id", espId(m.getHeader("esp_id", String.class), true));
        if (m.getHeader("gpio") != null) {
            m.setHeader("gpio", gpio(m.getHeader("gpio", String.class)));
        }
    }

    /** Query parameters shared by list endpoints: esp_id?, gpio?, sensor_type?, status?, limit, offset, start/end time. */
    public void queryParams(Exchange exchange) {
        Message m = exchange.getMessage();
        m.setHeader("esp_id", espId(m.getHeader("esp_id", String.class), false));
        String gpio = m.getHeader("gpio", String.class);
        m.setHeader("gpio", gpio == null || gpio.isBlank() ? null : gpio(gpio));
        m.setHeader("sensor_type", blankToNull(m.getHeader("sensor_type", String.class)));
        String status = blankToNull(m.getHeader("status", String.class));
        if (status != null && !List.of("pending_approval", "approved", "online", "offline", "rejected", "error").contains(status)) {
            throw ApiProblem.badRequest("status must be one of pending_approval, approved, online, offline, rejected, error");
        }
        m.setHeader("status", status);
        m.setHeader("limit", intParam(m.getHeader("limit", String.class), "limit", defaultLimit, 1, maxLimit));
        m.setHeader("offset", intParam(m.getHeader("offset", String.class), "offset", 0, 0, Integer.MAX_VALUE));
        Timestamp end = time(m.getHeader("end_time", String.class), "end_time", new Timestamp(System.currentTimeMillis() + 86_400_000L));
        Timestamp start = time(m.getHeader("start_time", String.class), "start_time", new Timestamp(0));
        if (start.after(end)) {
            throw ApiProblem.badRequest("start_time must not be after end_time");
        }
        m.setHeader("start_time", start);
        m.setHeader("end_time", end);
    }

    /** The JSON object body of a POST; an empty body is an empty object. */
    public Map<String, Object> jsonBody(Exchange exchange) {
        Message m = exchange.getMessage();
        String body = m.getBody(String.class);
        String type = m.getHeader("Content-Type", String.class);
        if (body == null || body.isBlank()) {
            // a form or multipart body is consumed before this point and looks empty: refuse it, do not act on "no body"
            Long length = m.getHeader("Content-Length", Long.class);
            if (type != null && !type.toLowerCase().startsWith("application/json") && length != null && length > 0) {
                throw new ApiProblem(415, "Unsupported media type", "send the body as application/json");
            }
            return new LinkedHashMap<>();
        }
        if (type == null || !type.toLowerCase().startsWith("application/json")) {
            throw new ApiProblem(415, "Unsupported media type", "send the body as application/json");
        }
        try {
            Object parsed = JSON.readValue(body, Object.class);
            if (!(parsed instanceof Map)) {
                throw ApiProblem.badRequest("body must be a JSON object");
            }
            return JSON.convertValue(parsed, MAP);
        } catch (ApiProblem e) {
            throw e;
        } catch (Exception e) {
            throw ApiProblem.badRequest("body is not valid JSON");
        }
    }

    /** An optional string field of a JSON body, with a length limit. */
    public String optionalText(Map<String, Object> body, String field, int maxLength) {
        Object v = body.get(field);
        if (v == null) {
            return null;
        }
        if (!(v instanceof String s)) {
            throw ApiProblem.badRequest(field + " must be a string");
        }
        if (s.length() > maxLength) {
            throw ApiProblem.badRequest(field + " must be at most " + maxLength + " characters");
        }
        return s;
    }

    String espId(String raw, boolean required) {
        if (raw == null || raw.isBlank()) {
            if (required) {
                throw ApiProblem.badRequest("esp_id is required");
            }
            return null;
        }
        if (!espIdPattern.matcher(raw).matches()) {
            throw ApiProblem.badRequest("esp_id must match " + espIdPattern.pattern());
        }
        return raw;
    }

    Integer gpio(String raw) {
        int g = intParam(raw, "gpio", -1, 0, maxGpio);
        return g;
    }

    static int intParam(String raw, String name, int def, int min, int max) {
        if (raw == null || raw.isBlank()) {
            return def;
        }
        try {
            int v = Integer.parseInt(raw.trim());
            if (v < min || v > max) {
                throw ApiProblem.badRequest(name + " must be between " + min + " and " + max);
            }
            return v;
        } catch (NumberFormatException e) {
            throw ApiProblem.badRequest(name + " must be an integer");
        }
    }

    static Timestamp time(String raw, String name, Timestamp def) {
        if (raw == null || raw.isBlank()) {
            return def;
        }
        try {
            if (raw.matches("\\d{1,13}")) {
                long v = Long.parseLong(raw);
                return new Timestamp(v > 10_000_000_000L ? v : v * 1000);
            }
            return Timestamp.from(Instant.parse(raw));
        } catch (DateTimeParseException | NumberFormatException e) {
            throw ApiProblem.badRequest(name + " must be ISO-8601 (2026-01-01T00:00:00Z) or unix seconds");
        }
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s;
    }

    /** Rows as JSON-friendly maps: timestamps as ISO-8601, jsonb as nested JSON. */
    public List<Map<String, Object>> rows(List<Map<String, Object>> rows) throws Exception {
        List<Map<String, Object>> out = new ArrayList<>(rows.size());
        for (Map<String, Object> r : rows) {
            Map<String, Object> m = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : r.entrySet()) {
                Object v = e.getValue();
                if (v instanceof Timestamp t) {
                    v = t.toInstant().toString();
                } else if (v instanceof PGobject pg && pg.getValue() != null && pg.getType().startsWith("json")) {
                    v = JSON.readValue(pg.getValue(), Object.class);
                }
                m.put(e.getKey(), v);
            }
            out.add(m);
        }
        return out;
    }

    /** The one row of a lookup, or 404. */
    public Map<String, Object> one(List<Map<String, Object>> rows, String what) throws Exception {
        if (rows == null || rows.isEmpty()) {
            throw ApiProblem.notFound(what + " not found");
        }
        return rows(rows).get(0);
    }

    /** A list response: {@code {<name>: [...], count}} plus paging. */
    public Map<String, Object> list(String name, List<Map<String, Object>> rows, Integer limit, Integer offset) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put(name, rows(rows));
        out.put("count", rows.size());
        out.put("limit", limit);
        out.put("offset", offset);
        return out;
    }

    /** Problem body for an exception: ApiProblem as is, database trouble as 503, anything else as 500. */
    public Map<String, Object> problem(Exchange exchange, Throwable e) {
        ApiProblem found = null;
        for (Throwable t = e; t != null && found == null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof ApiProblem ap) {
                found = ap;
            }
        }
        ApiProblem p = found != null ? found : isDatabase(e)
                ? new ApiProblem(503, "Service unavailable", "the database is not reachable; retry shortly")
                : new ApiProblem(500, "Internal error", "unexpected error: " + e.getClass().getSimpleName());
        exchange.getMessage().setHeader(Exchange.HTTP_RESPONSE_CODE, p.getStatus());
        exchange.getMessage().setHeader(Exchange.CONTENT_TYPE, "application/problem+json");
        if (p.getStatus() == 503) {
            exchange.getMessage().setHeader("Retry-After", "5");
        }
        if (p instanceof io.kaiser.command.CommandService.RateLimited rl) {
            exchange.getMessage().setHeader("Retry-After", Long.toString(rl.getRetryAfterSeconds()));
        }
        return p.body(exchange.getMessage().getHeader(Exchange.HTTP_PATH, String.class));
    }

    static boolean isDatabase(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SQLException || t.getClass().getName().startsWith("org.springframework.dao")
                    || t.getClass().getName().startsWith("org.springframework.jdbc")) {
                return true;
            }
            if (t.getCause() == t) {
                break;
            }
        }
        return false;
    }
}
