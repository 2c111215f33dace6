package io.kaiser.command;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import javax.sql.DataSource;

import io.kaiser.ingest.IngestRows;
import io.kaiser.live.LiveEvent;
import org.apache.camel.Header;
import org.apache.camel.ExchangeProperty;
import org.apache.camel.Body;
import io.kaiser.KaiserHeaders;

/**
 * Device answers of one ingest batch (acks, responses, outcomes), stored and applied in one transaction when the
 * batch ends: for each answer, in arrival order, its idempotency key (a duplicate answer is skipped), its
 * device_answers row and its effect on the command. One commit per batch instead of several per answer, and an answer
 * is never half applied: the key, the row and the command change commit together or not at all (a failed batch is
 * retried by the drainer from the journal).
 *
 * <p>The idempotency keys live in {@code camel_messageprocessed} under the processor name {@code device-answers},
 * the layout of Camel's JdbcMessageIdRepository, so they survive restarts and are shared by every instance on the
 * database.
 */
public final class AnswerStore {
    /** Processor name of the answer keys in camel_messageprocessed. */
    public static final String PROCESSOR = "device-answers";

    private final DataSource dataSource;
    private final CommandService commands;
    private final IngestRows rows;

    public AnswerStore(DataSource dataSource, CommandService commands, IngestRows rows) {
        this.dataSource = dataSource;
        this.commands = commands;
        this.rows = rows;
    }

    /** The answers of one ingest batch, in arrival order. */
    public static final class Batch {
        private final List<Answer> answers = new ArrayList<>();

        public boolean isEmpty() {
            return answers.isEmpty();
        }

        public int size() {
            return answers.size();
        }
    }

    private record Answer(String key, Map<String, Object> row, Map<String, Object> payload) { }

    public Batch newBatch() {
        return new Batch();
    }

    /** Adds one validated answer to the batch (nothing is written yet). */
    public void add(@ExchangeProperty(KaiserHeaders.ANSWER_BATCH) Batch batch, @Header(KaiserHeaders.TOPIC_KEY) String topicKey,
                    @Header(KaiserHeaders.ESP_ID) String espId, @Header(KaiserHeaders.GPIO) Integer gpio, @Body Map<String, Object> payload,
                    @Header(KaiserHeaders.RECEIVED_AT) long receivedAt, @Header(KaiserHeaders.INGEST_POS) String ingestPos) {
        batch.answers.add(new Answer(rows.answerKey(topicKey, espId, payload, ingestPos),
                rows.answer(topicKey, espId, gpio, payload, receivedAt, ingestPos), payload));
    }

    /**
     * Stores the batch's answers in one transaction and then wakes the requests waiting for the commands they ended.
     *
     * @return the live events of the answers that were new (duplicates have none)
     */
    public List<LiveEvent> store(Batch batch) throws SQLException {
        List<LiveEvent> events = new ArrayList<>();
        List<CommandService.AnswerEffect> effects = new ArrayList<>();
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            // one round trip per answer for the idempotency check and the row: the row is inserted only with a new key
            try (PreparedStatement keyAndRow = c.prepareStatement("""
                    WITH k AS (INSERT INTO camel_messageprocessed (processorname, messageid, createdat) VALUES (?, ?, ?)
                               ON CONFLICT DO NOTHING RETURNING 1),
                         a AS (INSERT INTO device_answers (ingest_pos, esp_id, topic_key, gpio, correlation_id, status, payload, received_at)
                               SELECT ?, ?, ?, ?, ?, ?, CAST(? AS jsonb), ? FROM k
                               ON CONFLICT (ingest_pos) DO NOTHING)
                    SELECT count(*) FROM k""")) {
                for (Answer a : batch.answers) {
                    Map<String, Object> r = a.row();
                    keyAndRow.setString(1, PROCESSOR);
                    keyAndRow.setString(2, a.key());
                    keyAndRow.setTimestamp(3, new Timestamp(System.currentTimeMillis()));
                    keyAndRow.setString(4, (String) r.get("ingest_pos"));
                    keyAndRow.setString(5, (String) r.get("esp_id"));
                    keyAndRow.setString(6, (String) r.get("topic_key"));
                    keyAndRow.setObject(7, r.get("gpio"), java.sql.Types.SMALLINT);
                    keyAndRow.setString(8, (String) r.get("correlation_id"));
                    keyAndRow.setString(9, (String) r.get("status"));
                    keyAndRow.setString(10, (String) r.get("payload"));
                    keyAndRow.setTimestamp(11, (Timestamp) r.get("received_at"));
                    boolean first;
                    try (java.sql.ResultSet rs = keyAndRow.executeQuery()) {
                        first = rs.next() && rs.getInt(1) == 1;
                    }
                    // the idempotency check: a key already there (sent twice, redelivered, replayed) means processed
                    if (!first) {
                        continue;
                    }
                    CommandService.AnswerEffect effect = commands.applyAnswer(c, r);
                    if (effect != null) {
                        effects.add(effect);
                    }
                    events.addAll(rows.answerEvent(r, a.payload()));
                }
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
        effects.forEach(commands::answered);
        return events;
    }
}
