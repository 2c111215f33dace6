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
    public void add(Batch batch, String topicKey, String espId, Integer gpio, Map<String, Object> payload, long receivedAt, String ingestPos) {
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
            try (PreparedStatement key = c.prepareStatement("""
                         INSERT INTO camel_messageprocessed (processorname, messageid, createdat) VALUES (?, ?, ?)
                         ON CONFLICT DO NOTHING""");
                 PreparedStatement answer = c.prepareStatement("""
                         INSERT INTO device_answers (ingest_pos, esp_id, topic_key, gpio, correlation_id, status, payload, received_at)
                         VALUES (?, ?, ?, ?, ?, ?, CAST(? AS jsonb), ?)
                         ON CONFLICT (ingest_pos) DO NOTHING""")) {
                for (Answer a : batch.answers) {
                    // the idempotency check: a key already there (sent twice, redelivered, replayed) means processed
                    key.setString(1, PROCESSOR);
                    key.setString(2, a.key());
                    key.setTimestamp(3, new Timestamp(System.currentTimeMillis()));
                    if (key.executeUpdate() == 0) {
                        continue;
                    }
                    Map<String, Object> r = a.row();
                    answer.setString(1, (String) r.get("ingest_pos"));
                    answer.setString(2, (String) r.get("esp_id"));
                    answer.setString(3, (String) r.get("topic_key"));
                    answer.setObject(4, r.get("gpio"), java.sql.Types.SMALLINT);
                    answer.setString(5, (String) r.get("correlation_id"));
                    answer.setString(6, (String) r.get("status"));
                    answer.setString(7, (String) r.get("payload"));
                    answer.setTimestamp(8, (Timestamp) r.get("received_at"));
                    answer.executeUpdate();
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
