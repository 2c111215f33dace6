package io.kaiser.command;

import io.kaiser.KaiserHeaders;
import org.apache.camel.ExchangeProperty;
import org.apache.camel.Body;
import org.apache.camel.Header;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;

import javax.sql.DataSource;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kaiser.api.ApiProblem;
import io.kaiser.mqtt.TopicBuilder;

/**
 * The command store: creates commands (device checks, emergency latch, Idempotency-Key, rate limit), claims them
 * for publishing (so a command is published at most once by any instance), and moves their status when the
 * device answers or time runs out. PostgreSQL holds all state; {@code pg_notify('kaiser_command', id)} tells every
 * instance that a command changed.
 */
public final class CommandService {
    public static final String NOTIFY_CHANNEL = "kaiser_command";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger("kaiser.commands");

    private final DataSource dataSource;
    private final TopicBuilder topics;
    private final Function<String, Duration> ackTimeout;
    private final Function<String, Duration> ttl;
    private final RateLimiter rateLimiter;
    private volatile java.util.function.BiConsumer<String, Duration> ackListener = (type, latency) -> { };

    private volatile java.util.function.Consumer<String> changeListener = id -> { };
    private volatile java.util.function.Consumer<Map<String, Object>> endedListener = view -> changeListener.accept((String) view.get("correlation_id"));

    /** Told the id of every command an answer changed on this instance (waiting requests here need not wait for NOTIFY). */
    /** Told the final view of a command that an answer on this instance just ended (no need to read it again). */
    public void setEndedListener(java.util.function.Consumer<Map<String, Object>> listener) {
        this.endedListener = listener;
    }

    public void setChangeListener(java.util.function.Consumer<String> listener) {
        this.changeListener = listener;
    }

    /** Told the command type and the time from publish to the device's final answer, for the ack latency histogram. */
    public void setAckListener(java.util.function.BiConsumer<String, Duration> listener) {
        this.ackListener = listener;
    }

    public CommandService(DataSource dataSource, TopicBuilder topics, Function<String, Duration> ackTimeout,
                          Function<String, Duration> ttl, RateLimiter rateLimiter) {
        this.dataSource = dataSource;
        this.topics = topics;
        this.ackTimeout = ackTimeout;
        this.ttl = ttl;
        this.rateLimiter = rateLimiter;
    }

    /**
     * The route's step for a REST request (direct:command-issue): the body's spec, issued by {@code api}, continuing the
     * request's {@code traceparent}.
     */
    public Command issueRequest(@Body CommandSpec spec, @Header("Idempotency-Key") String idempotencyKey,
                                @Header(CommandTrace.NAME) String traceparent) throws SQLException {
        return issue(spec, idempotencyKey, "api", traceparent);
    }

    /** Creates a command for a REST request, or returns the earlier one for an Idempotency-Key replay. */
    public Command issue(CommandSpec spec, String idempotencyKey, String issuedBy) throws SQLException {
        return issue(spec, idempotencyKey, issuedBy, null);
    }

    /**
     * As {@link #issue(CommandSpec, String, String)}, continuing the W3C trace of the request's {@code traceparent}
     * header (a new trace when it is missing or not valid).
     */
    public Command issue(CommandSpec spec, String idempotencyKey, String issuedBy, String traceparent) throws SQLException {
        String key = idempotencyKey == null || idempotencyKey.isBlank() ? null : spec.endpoint() + "|" + idempotencyKey.trim();
        if (key != null && key.length() > 300) {
            throw ApiProblem.badRequest("Idempotency-Key must be at most 255 characters");
        }
        String hash = spec.requestHash();
        try (Connection c = dataSource.getConnection()) {
            if (key != null) {
                Command earlier = byIdempotencyKey(c, key, hash);
                if (earlier != null) {
                    return earlier;
                }
            }
            String bucket = spec.type().startsWith("emergency") ? null : spec.espId() + "|" + spec.type();
            long retryAfter = bucket == null ? 0 : rateLimiter.tryAcquire(bucket);
            if (retryAfter > 0) {
                checkDevice(c, spec); // an unknown, offline or emergency-stopped device says so before "too many"
                throw new RateLimited(retryAfter, "more than the allowed " + spec.type() + " commands for " + spec.espId()
                        + "; retry in " + retryAfter + " s");
            }
            String id = UUID.randomUUID().toString();
            // stored only if the device may take it (one round trip for check and insert), and claimed for publishing
            // as it is stored (one commit): the request publishes it next, and a failed publish puts it back into the
            // outbox (unclaim)
            Command command = insert(c, spec, id, null, key, hash, issuedBy, CommandTrace.continueOrStart(traceparent), true, true);
            if (command == null) {
                if (bucket != null) {
                    rateLimiter.release(bucket);
                }
                checkDevice(c, spec);
                // the device passed the check just now: it changed between the two statements
                throw ApiProblem.conflict("device " + spec.espId() + " changed while the command was stored; retry");
            }
            return command;
        }
    }

    /** Inserts a command without REST checks (emergency fan-out). */
    public Command create(Connection c, CommandSpec spec, String correlationId, String incidentId, String issuedBy) throws SQLException {
        return insert(c, spec, correlationId, incidentId, null, null, issuedBy, CommandTrace.create(), false, false);
    }

    /** Columns the INSERT sets, in the order of its 17 parameters. */
    private static final String INSERT_COLUMNS = """
            INSERT INTO commands (correlation_id, esp_id, command_type, gpio, topic, qos, payload, status, idempotency_key,
                                  request_hash, incident_id, issued_by, expires_at, ack_timeout_ms, traceparent,
                                  published_at, ack_deadline)
            """;
    private static final String INSERT_VALUES = """
            ?, ?, ?, ?, ?, ?, ?::jsonb, 'pending', ?, ?, ?, ?, ?, ?, ?,
            CASE WHEN ? THEN now() END, CASE WHEN ? THEN now() + ? * interval '1 millisecond' END""";
    /**
     * The INSERT of a REST command, only for a device that may take it (what {@link #checkDevice} tells apart when no
     * row was stored): online, not emergency-stopped (unless the command is an emergency one) and, for an actuator
     * command, with a reported actuator on the gpio. Parameters 18 to 21: esp_id, latch applies, is actuator, gpio.
     */
    private static final String INSERT_IF_DEVICE_MAY = INSERT_COLUMNS + "SELECT " + INSERT_VALUES + """

              FROM devices d
             WHERE d.esp_id = ? AND d.status = 'online'
               AND NOT (? AND EXISTS (SELECT 1 FROM emergency_latches l WHERE l.scope IN (d.esp_id, '*')))
               AND NOT (? AND NOT EXISTS (SELECT 1 FROM actuator_states a WHERE a.esp_id = d.esp_id AND a.gpio = ?))""";

    /** @return the stored command, or null when {@code checkDevice} is set and the device may not take it */
    private Command insert(Connection c, CommandSpec spec, String id, String incidentId, String key, String hash, String issuedBy,
                           String traceparent, boolean claim, boolean checkDevice) throws SQLException {
        Map<String, Object> payload = new LinkedHashMap<>(spec.fields());
        payload.put("correlation_id", id);
        payload.put("intent_id", id);
        payload.put("timestamp", System.currentTimeMillis() / 1000);
        if (spec.topicKey().equals("config")) {
            payload.put("request_id", id);
            payload.putIfAbsent("generation", System.currentTimeMillis());
        }
        if (issuedBy != null && spec.topicKey().equals("actuator-command")) {
            payload.put("issued_by", issuedBy);
        }
        // for MQTT 3.1.1 devices, which have no user properties (MQTT 5 devices get it as a user property too)
        payload.put(CommandTrace.NAME, traceparent);
        String topic = topics.outbound(spec.topicKey(), spec.espId(), spec.gpio());
        int qos = topics.qos(spec.topicKey());
        String json = json(payload);
        Duration life = ttl.apply(spec.type());
        String sql = checkDevice ? INSERT_IF_DEVICE_MAY : INSERT_COLUMNS + "VALUES (" + INSERT_VALUES + ")";
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, id);
            ps.setString(2, spec.espId());
            ps.setString(3, spec.type());
            ps.setObject(4, spec.gpio());
            ps.setString(5, topic);
            ps.setInt(6, qos);
            ps.setString(7, json);
            ps.setString(8, key);
            ps.setString(9, hash);
            ps.setString(10, incidentId);
            ps.setString(11, issuedBy);
            ps.setTimestamp(12, life == null ? null : new Timestamp(System.currentTimeMillis() + life.toMillis()));
            int timeoutMillis = (int) ackTimeout.apply(spec.type()).toMillis();
            ps.setInt(13, timeoutMillis);
            ps.setString(14, traceparent);
            ps.setBoolean(15, claim);
            ps.setBoolean(16, claim);
            ps.setInt(17, timeoutMillis);
            if (checkDevice) {
                ps.setString(18, spec.espId());
                ps.setBoolean(19, !spec.type().startsWith("emergency"));
                ps.setBoolean(20, "actuator".equals(spec.type()));
                ps.setObject(21, spec.gpio(), java.sql.Types.INTEGER);
            }
            if (ps.executeUpdate() == 0) {
                return null;
            }
        } catch (SQLException e) {
            if ("23505".equals(e.getSQLState()) && key != null) {
                // a concurrent request with the same key won: answer like a replay
                Command earlier = byIdempotencyKey(c, key, hash);
                if (earlier != null) {
                    return earlier;
                }
            }
            throw e;
        }
        LOG.info("Command {} {} for {} stored (traceparent={})", id, spec.type(), spec.espId(), traceparent);
        return new Command(id, spec.espId(), spec.type(), topic, qos, json, false, traceparent, claim);
    }

    private Command byIdempotencyKey(Connection c, String key, String hash) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT correlation_id, esp_id, command_type, topic, qos, payload::text, request_hash, traceparent FROM commands WHERE idempotency_key = ?")) {
            ps.setString(1, key);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return null;
                }
                if (!hash.equals(rs.getString(7))) {
                    throw new ApiProblem(422, "Idempotency conflict",
                            "Idempotency-Key was already used for a different request (command " + rs.getString(1) + ")");
                }
                return new Command(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getInt(5), rs.getString(6), true,
                        rs.getString(8));
            }
        }
    }

    /**
     * Why the device may not take the command, as the API problem (404 unknown device or actuator, 409 not online, 423
     * emergency-stopped); returns when it may. Read only on the way to a refusal: the INSERT checks the same itself.
     */
    private void checkDevice(Connection c, CommandSpec spec) throws SQLException {
        // one round trip: the device's status, the emergency latch that blocks it, and whether it has the actuator
        String status;
        String latchScope = null;
        String latchIncident = null;
        boolean hasActuator;
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT d.status, l.scope, l.incident_id,
                       EXISTS (SELECT 1 FROM actuator_states a WHERE a.esp_id = d.esp_id AND a.gpio = ?)
                  FROM devices d
                  LEFT JOIN LATERAL (SELECT scope, incident_id FROM emergency_latches WHERE scope IN (d.esp_id, '*')
                                      ORDER BY scope DESC LIMIT 1) l ON ?
                 WHERE d.esp_id = ?""")) {
            ps.setObject(1, spec.gpio(), java.sql.Types.INTEGER);
            ps.setBoolean(2, !spec.type().startsWith("emergency"));
            ps.setString(3, spec.espId());
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    throw ApiProblem.notFound("device " + spec.espId() + " is unknown");
                }
                status = rs.getString(1);
                latchScope = rs.getString(2);
                latchIncident = rs.getString(3);
                hasActuator = rs.getBoolean(4);
            }
        }
        if (latchScope != null) {
            throw new ApiProblem(423, "Emergency stop latched", "device " + spec.espId() + " is emergency-stopped (incident "
                    + latchIncident + ", " + ("*".equals(latchScope) ? "all devices" : "this device")
                    + "): clear the emergency first");
        }
        if (!"online".equals(status)) {
            throw ApiProblem.conflict("device " + spec.espId() + " is " + status + ": commands go to online devices only");
        }
        if ("actuator".equals(spec.type()) && !hasActuator) {
            throw ApiProblem.notFound("device " + spec.espId() + " has reported no actuator on gpio " + spec.gpio());
        }
    }

    /**
     * Claims a command for publishing unless its caller already claimed it when storing it ({@link Command#claimed()}:
     * the REST path, no second round trip and commit).
     */
    public boolean claimForPublish(@ExchangeProperty(KaiserHeaders.COMMAND) Command command) throws SQLException {
        return command.claimed() || claim(command.correlationId());
    }

    /**
     * Claims an unpublished, unexpired command for publishing. Only one caller (REST or outbox, any instance) wins,
     * so a command is never published twice. An expired command is marked expired and never sent.
     */
    public boolean claim(String correlationId) throws SQLException {
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("""
                    UPDATE commands SET published_at = now(), ack_deadline = now() + ack_timeout_ms * interval '1 millisecond'
                     WHERE correlation_id = ? AND published_at IS NULL AND status = 'pending'
                       AND (expires_at IS NULL OR expires_at > now())""")) {
                ps.setString(1, correlationId);
                boolean claimed = ps.executeUpdate() == 1;
                if (!claimed) {
                    expire(c, correlationId);
                }
                c.commit();
                return claimed;
            }
        }
    }

    private static void expire(Connection c, String correlationId) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                UPDATE commands SET status = 'expired', completed_at = now(), status_reason = 'time to live passed before it could be sent'
                 WHERE correlation_id = ? AND published_at IS NULL AND status = 'pending' AND expires_at <= now()
                RETURNING pg_notify('kaiser_command', correlation_id)""")) {
            ps.setString(1, correlationId);
            ps.execute();
        }
    }

    /** The publish failed after a claim: back to the outbox. */
    public void unclaim(String correlationId, String reason) throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("""
                     UPDATE commands SET published_at = NULL, ack_deadline = NULL, status_reason = ?
                      WHERE correlation_id = ? AND status = 'pending'""")) {
            ps.setString(1, reason == null ? "publish failed" : "queued: " + abbreviate(reason));
            ps.setString(2, correlationId);
            ps.executeUpdate();
        }
    }

    /** Commands waiting in the outbox, oldest first. */
    public List<Command> outbox(int limit) throws SQLException {
        List<Command> out = new ArrayList<>();
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("""
                     SELECT correlation_id, esp_id, command_type, topic, qos, payload::text, traceparent FROM commands
                      WHERE published_at IS NULL AND status = 'pending' ORDER BY created_at, correlation_id LIMIT ?""")) {
            ps.setInt(1, limit);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(new Command(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getInt(5), rs.getString(6), false,
                            rs.getString(7)));
                }
            }
        }
        return out;
    }

    public long outboxDepth() throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM commands WHERE published_at IS NULL AND status = 'pending'");
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }

    /**
     * A device answered (an ack, response or outcome carrying a correlation_id): moves the command to accepted,
     * applied or failed. An answer after the command ended is kept in late_answers, never lost. Its own transaction;
     * the ingest path uses {@link AnswerStore}, which applies a batch of answers in one.
     *
     * @return the correlation id when it belongs to a command, else null
     */
    public String onAnswer(Map<String, Object> answerRow) throws SQLException {
        AnswerEffect effect;
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try {
                effect = applyAnswer(c, answerRow);
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
        if (effect == null) {
            return null;
        }
        answered(effect);
        return effect.correlationId();
    }

    /**
     * What an applied answer did to its command, reported with {@link #answered(AnswerEffect)} once the transaction
     * committed.
     *
     * @param correlationId the command
     * @param type          its command type
     * @param ackLatency    publish to final answer, when this answer ended the command; else null
     */
    public record AnswerEffect(String correlationId, String type, Duration ackLatency, Map<String, Object> view) { }

    /** The columns of the REST view of a command, read by {@link #view} and returned by an answer that ends it. */
    private static final String VIEW_COLUMNS = """
            correlation_id, esp_id, command_type, gpio, topic, qos, payload::text, status, status_reason, incident_id,
            issued_by, created_at, expires_at, published_at, ack_deadline, accepted_at, completed_at,
            answer::text, answer_topic, late_answers::text, traceparent""";

    /**
     * Applies one answer to its command inside the caller's transaction (row lock, status change or late answer,
     * {@code pg_notify} delivered at commit). The caller reports the effect with {@link #answered(AnswerEffect)}
     * after the commit.
     *
     * @return the effect, or null when no command has the answer's correlation id
     */
    public AnswerEffect applyAnswer(Connection c, Map<String, Object> answerRow) throws SQLException {
        String corr = (String) answerRow.get("correlation_id");
        if (corr == null) {
            return null;
        }
        String outcome = answerOutcome(answerRow);
        if (outcome != null) {
            // the usual answer, to an open command: one statement that locks, changes and returns the command's view
            AnswerEffect changed = changeOpenCommand(c, answerRow, outcome);
            if (changed != null) {
                return changed;
            }
        }
        return applyUnmatchedAnswer(c, answerRow);
    }

    /**
     * The status an answer moves its open command to (accepted, applied, failed), or null when it moves nothing.
     * Used with {@link #OPEN_COMMANDS_UPDATE}.
     */
    String answerOutcome(Map<String, Object> answerRow) {
        String topicKey = (String) answerRow.get("topic_key");
        String outcome = outcome(topicKey, (String) answerRow.get("status"));
        if ("intent-outcome".equals(topicKey) && "applied".equals(outcome)) {
            // the command's own answer (response, config_response, ack) carries the details: until it comes, accepted
            return "accepted";
        }
        return outcome;
    }

    /**
     * The usual answer's change to its command while the command is open (pending or accepted), for a set of answers:
     * CTE {@code i} holds them ({@code a_ord, a_key, a_corr, a_topic_key, a_outcome, a_payload, a_reason}), CTE
     * {@code k} the keys of those that are new ({@code messageid}); only new answers change a command. Returns per
     * changed command its view (columns 1 to 21, as {@link #toView} reads them), its NOTIFY and the answer's
     * {@code a_ord}. {@link AnswerStore} runs it for a batch's answers in the statement that stores them; one answer
     * alone: {@link #changeOpenCommand}.
     *
     * <p>"Open" is written as "not final" on purpose: {@code status IN ('pending', 'accepted')} lets the planner scan
     * {@code commands_deadline_idx} (whose predicate it is) and hash-join the batch against it. That index keeps an
     * entry for every command answered since the last vacuum (an answer moves the status, the row gets a new version),
     * so the scan grew with the command rate: 3 ms per batch at 380 commands/s, the largest share of PostgreSQL's
     * CPU per REST round trip. Looked up by primary key, each answer costs one index probe.
     */
    static final String OPEN_COMMANDS_UPDATE = """
            UPDATE commands SET status = i.a_outcome, answer = CAST(i.a_payload AS jsonb), answer_topic = i.a_topic_key,
                   accepted_at = coalesce(accepted_at, now()),
                   completed_at = CASE WHEN i.a_outcome = 'accepted' THEN NULL ELSE now() END, status_reason = i.a_reason
              FROM i JOIN k ON k.messageid = i.a_key
             WHERE correlation_id = i.a_corr AND status NOT IN ('applied', 'failed', 'timed_out', 'expired')
               AND NOT (status = 'accepted' AND i.a_outcome = 'accepted')
            """ + " RETURNING " + VIEW_COLUMNS + ", pg_notify('kaiser_command', correlation_id), i.a_ord";

    /** What the device's text in an answer says about its outcome (message, reason or error), for status_reason. */
    static String answerReason(Map<String, Object> answerRow) {
        return reason((String) answerRow.get("payload"));
    }

    /** The effect of an open command's change, from the row {@link #OPEN_COMMANDS_UPDATE} returned (columns 1 to 21). */
    AnswerEffect openCommandChanged(ResultSet rs, Map<String, Object> answerRow, String outcome) throws SQLException {
        Map<String, Object> view = toView(rs);
        String corr = (String) view.get("correlation_id");
        LOG.info("Command {} answered on {}: {} (traceparent={})", corr, answerRow.get("topic_key"), outcome, view.get("traceparent"));
        Timestamp publishedAt = rs.getTimestamp(14);
        Duration ackLatency = isFinal(outcome) && publishedAt != null
                ? Duration.ofMillis(Math.max(0, System.currentTimeMillis() - publishedAt.getTime())) : null;
        return new AnswerEffect(corr, (String) view.get("command_type"), ackLatency, isFinal(outcome) ? view : null);
    }

    /**
     * An answer that did not move an open command: no such command, already ended (kept as a late answer), a repeated
     * accepted, or an answer without an outcome. Inside the caller's transaction.
     *
     * @return the effect, or null when no command has the answer's correlation id
     */
    AnswerEffect applyUnmatchedAnswer(Connection c, Map<String, Object> answerRow) throws SQLException {
        String corr = (String) answerRow.get("correlation_id");
        String topicKey = (String) answerRow.get("topic_key");
        String outcome = answerOutcome(answerRow);
        String payload = (String) answerRow.get("payload");
        String current;
        String type;
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT status, command_type, traceparent FROM commands WHERE correlation_id = ? FOR UPDATE")) {
            ps.setString(1, corr);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return null;
                }
                current = rs.getString(1);
                type = rs.getString(2);
                LOG.info("Command {} answered on {}: {} (was {}, traceparent={})", corr, topicKey, outcome, current, rs.getString(3));
            }
        }
        boolean open = "pending".equals(current) || "accepted".equals(current);
        if (open && outcome != null && !(outcome.equals("accepted") && current.equals("accepted"))) {
            // not reached while ended commands stay ended; kept so that an answer can never be lost to a race
            AnswerEffect changed = changeOpenCommand(c, answerRow, outcome);
            if (changed != null) {
                return changed;
            }
        } else if (!open) {
            try (PreparedStatement ps = c.prepareStatement("""
                    UPDATE commands SET late_answers = coalesce(late_answers, '[]'::jsonb)
                           || jsonb_build_array(jsonb_build_object('topic', ?, 'received_at', now(), 'answer', ?::jsonb))
                     WHERE correlation_id = ?
                    RETURNING pg_notify('kaiser_command', correlation_id)""")) {
                ps.setString(1, topicKey);
                ps.setString(2, payload);
                ps.setString(3, corr);
                ps.execute();
            }
        } else {
            notify(c, corr);
        }
        return new AnswerEffect(corr, type, null, null);
    }

    /**
     * Sets an open command's status from its answer (accepted, or ended: applied or failed) and returns the effect
     * with the command's view when it ended; null when the command is not open or the answer would not change it.
     */
    private AnswerEffect changeOpenCommand(Connection c, Map<String, Object> answerRow, String outcome) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                WITH i (a_ord, a_key, a_corr, a_topic_key, a_outcome, a_payload, a_reason) AS
                         (VALUES (0, '', CAST(? AS text), CAST(? AS text), CAST(? AS text), CAST(? AS text), CAST(? AS text))),
                     k (messageid) AS (VALUES (''))
                """ + OPEN_COMMANDS_UPDATE)) {
            ps.setString(1, (String) answerRow.get("correlation_id"));
            ps.setString(2, (String) answerRow.get("topic_key"));
            ps.setString(3, outcome);
            ps.setString(4, (String) answerRow.get("payload"));
            ps.setString(5, answerReason(answerRow));
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? openCommandChanged(rs, answerRow, outcome) : null;
            }
        }
    }

    /** After the commit of an applied answer: the ack latency histogram and the requests waiting on this instance. */
    public void answered(AnswerEffect effect) {
        if (effect.ackLatency() != null) {
            ackListener.accept(effect.type(), effect.ackLatency());
        }
        if (effect.view() != null) {
            endedListener.accept(effect.view());
        } else {
            changeListener.accept(effect.correlationId());
        }
    }

    /** What an answer means for the command: accepted, applied, failed, or null (no change). */
    static String outcome(String topicKey, String status) {
        if (status == null) {
            return null;
        }
        String s = status.toLowerCase();
        return switch (s) {
            case "accepted", "processing" -> "accepted";
            case "applied", "persisted", "success", "ok", "executed", "cleared", "zone_assigned", "zone_removed", "subzone_assigned",
                 "subzone_removed", "safe_mode_enabled", "safe_mode_disabled", "subzone_safe_enabled", "subzone_safe_disabled",
                 "partial_success", "partial" -> "applied";
            case "failed", "rejected", "error", "expired", "timeout" -> "failed";
            default -> null;
        };
    }

    private static String reason(String payload) {
        try {
            Map<?, ?> m = JSON.readValue(payload, Map.class);
            Object r = m.get("message") != null ? m.get("message") : m.get("reason") != null ? m.get("reason") : m.get("error");
            return r == null ? null : abbreviate(r.toString());
        } catch (Exception e) {
            return null;
        }
    }

    /** Ends commands whose ack did not come in time, and expires queued ones past their time to live. */
    public List<String> sweep() throws SQLException {
        List<String> changed = new ArrayList<>();
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("""
                    UPDATE commands SET status = 'timed_out', completed_at = now(),
                           status_reason = 'no answer within ' || ack_timeout_ms || ' ms'
                     WHERE status IN ('pending', 'accepted') AND ack_deadline < now()
                    RETURNING correlation_id, pg_notify('kaiser_command', correlation_id)""")) {
                collect(ps, changed);
            }
            try (PreparedStatement ps = c.prepareStatement("""
                    UPDATE commands SET status = 'expired', completed_at = now(), status_reason = 'time to live passed before it could be sent'
                     WHERE status = 'pending' AND published_at IS NULL AND expires_at <= now()
                    RETURNING correlation_id, pg_notify('kaiser_command', correlation_id)""")) {
                collect(ps, changed);
            }
            c.commit();
        }
        return changed;
    }

    private static void collect(PreparedStatement ps, List<String> out) throws SQLException {
        try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                out.add(rs.getString(1));
            }
        }
    }

    /** The REST view of a command, or null. */
    public Map<String, Object> view(String correlationId) throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT " + VIEW_COLUMNS + " FROM commands WHERE correlation_id = ?")) {
            ps.setString(1, correlationId);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? toView(rs) : null;
            }
        }
    }

    /** The view from a row whose first columns are {@link #VIEW_COLUMNS}. */
    private static Map<String, Object> toView(ResultSet rs) throws SQLException {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("correlation_id", rs.getString(1));
        m.put("esp_id", rs.getString(2));
        m.put("command_type", rs.getString(3));
        m.put("gpio", rs.getObject(4));
        m.put("topic", rs.getString(5));
        m.put("qos", rs.getInt(6));
        m.put("payload", parse(rs.getString(7)));
        m.put("status", rs.getString(8));
        m.put("status_reason", rs.getString(9));
        m.put("incident_id", rs.getString(10));
        m.put("issued_by", rs.getString(11));
        m.put("created_at", iso(rs.getTimestamp(12)));
        m.put("expires_at", iso(rs.getTimestamp(13)));
        m.put("published_at", iso(rs.getTimestamp(14)));
        m.put("ack_deadline", iso(rs.getTimestamp(15)));
        m.put("accepted_at", iso(rs.getTimestamp(16)));
        m.put("completed_at", iso(rs.getTimestamp(17)));
        m.put("answer", parse(rs.getString(18)));
        m.put("answer_topic", rs.getString(19));
        m.put("late_answers", parse(rs.getString(20)));
        m.put("traceparent", rs.getString(21));
        return m;
    }

    /** The REST view of a command, or 404. */
    public Map<String, Object> viewOr404(String correlationId) throws SQLException {
        if (correlationId == null || correlationId.length() > 200) {
            throw ApiProblem.badRequest("correlation_id is not valid");
        }
        Map<String, Object> v = view(correlationId);
        if (v == null) {
            throw ApiProblem.notFound("command " + correlationId + " not found");
        }
        return v;
    }

    public static boolean isFinal(String status) {
        return switch (status) {
            case "applied", "failed", "timed_out", "expired" -> true;
            default -> false;
        };
    }

    private static void notify(Connection c, String corr) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT pg_notify('kaiser_command', ?)")) {
            ps.setString(1, corr);
            ps.execute();
        }
    }

    private static Object parse(String json) {
        if (json == null) {
            return null;
        }
        try {
            return JSON.readValue(json, Object.class);
        } catch (JsonProcessingException e) {
            return json;
        }
    }

    private static String iso(Timestamp t) {
        return t == null ? null : t.toInstant().toString();
    }

    static String json(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(e);
        }
    }

    private static String abbreviate(String s) {
        return s.length() > 200 ? s.substring(0, 200) : s;
    }

    /** 429: too many commands of one type for one device. */
    public static final class RateLimited extends ApiProblem {
        private final long retryAfterSeconds;

        public RateLimited(long retryAfterSeconds, String detail) {
            super(429, "Too many requests", detail);
            this.retryAfterSeconds = retryAfterSeconds;
        }

        public long getRetryAfterSeconds() {
            return retryAfterSeconds;
        }
    }

    /** Token buckets per key (device and command type): rate per second and burst from properties. */
    public static final class RateLimiter {
        private final double perSecond;
        private final double burst;
        private final Map<String, double[]> buckets = new ConcurrentHashMap<>();

        public RateLimiter(double perSecond, double burst) {
            this.perSecond = perSecond;
            this.burst = burst;
        }

        /** Gives back what {@link #tryAcquire} took, for a request that was refused for another reason. */
        public void release(String key) {
            double[] b = buckets.get(key);
            if (b != null) {
                synchronized (b) {
                    b[0] = Math.min(burst, b[0] + 1);
                }
            }
        }

        /** 0 when allowed, else the seconds to wait. */
        public long tryAcquire(String key) {
            double[] b = buckets.computeIfAbsent(key, k -> new double[] {burst, System.nanoTime()});
            synchronized (b) {
                long now = System.nanoTime();
                b[0] = Math.min(burst, b[0] + (now - b[1]) / 1e9 * perSecond);
                b[1] = now;
                if (b[0] >= 1) {
                    b[0] -= 1;
                    return 0;
                }
                return (long) Math.ceil((1 - b[0]) / perSecond);
            }
        }
    }
}
