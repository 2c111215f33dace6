package io.kaiser.command;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.HashMap;
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
 * batch ends: for each answer its idempotency key (a duplicate answer is skipped), its device_answers row and its
 * effect on the command, in arrival order per command. One commit per batch instead of several per answer, and an answer
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
     * A batch's answers that each move a different command on, in one statement: their idempotency keys (CTE k: the new
     * ones), rows for the new ones and their commands' changes. Per answer, in batch order: the changed command's view
     * and NOTIFY (columns 1 to 23 of {@link CommandService#OPEN_COMMANDS_UPDATE}, null when nothing changed), its
     * position (24) and whether it was new (25).
     */
    private static final String ANSWERS_KEYS_ROWS_AND_CHANGES = """
            WITH i AS (SELECT * FROM unnest(CAST(? AS int[]), CAST(? AS text[]), CAST(? AS text[]), CAST(? AS text[]),
                                            CAST(? AS text[]), CAST(? AS smallint[]), CAST(? AS text[]), CAST(? AS text[]),
                                            CAST(? AS text[]), CAST(? AS timestamptz[]), CAST(? AS text[]), CAST(? AS text[]))
                              AS t (a_ord, a_key, a_pos, a_esp, a_topic_key, a_gpio, a_corr, a_status, a_payload, a_received,
                                    a_outcome, a_reason)),
                 k AS (INSERT INTO camel_messageprocessed (processorname, messageid, createdat)
                       SELECT '""" + PROCESSOR + """
            ', a_key, now() FROM i
                       ON CONFLICT DO NOTHING RETURNING messageid),
                 a AS (INSERT INTO device_answers (ingest_pos, esp_id, topic_key, gpio, correlation_id, status, payload, received_at)
                       SELECT a_pos, a_esp, a_topic_key, a_gpio, a_corr, a_status, CAST(a_payload AS jsonb), a_received
                         FROM i JOIN k ON k.messageid = i.a_key
                       ON CONFLICT (ingest_pos) DO NOTHING),
                 u AS (""" + CommandService.OPEN_COMMANDS_UPDATE + """
            )
            SELECT u.*, i.a_ord, k.messageid IS NOT NULL
              FROM i LEFT JOIN k ON k.messageid = i.a_key LEFT JOIN u ON u.a_ord = i.a_ord
             ORDER BY i.a_ord""";

    /** One answer's idempotency key (CTE k, a row when new) and its row when new; 11 parameters; 1 when new. */
    private static final String ANSWER_KEY_AND_ROW = """
            WITH k AS (INSERT INTO camel_messageprocessed (processorname, messageid, createdat) VALUES (?, ?, ?)
                       ON CONFLICT DO NOTHING RETURNING 1),
                 a AS (INSERT INTO device_answers (ingest_pos, esp_id, topic_key, gpio, correlation_id, status, payload, received_at)
                       SELECT ?, ?, ?, ?, ?, ?, CAST(? AS jsonb), ? FROM k
                       ON CONFLICT (ingest_pos) DO NOTHING)
            SELECT count(*) FROM k""";

    /**
     * Stores the batch's answers in one transaction and then wakes the requests waiting for the commands they ended.
     * The usual answers (each moving a different command on) are stored and applied in one statement, a single round
     * trip for the batch; the others (no correlation id, no outcome, several answers to one command in the batch) one
     * at a time in arrival order, in the same transaction.
     *
     * @return the live events of the answers that were new (duplicates have none), in arrival order
     */
    public List<LiveEvent> store(Batch batch) throws SQLException {
        int n = batch.answers.size();
        String[] outcomes = new String[n];
        Map<String, Integer> perCommand = new HashMap<>();
        for (int i = 0; i < n; i++) {
            Map<String, Object> r = batch.answers.get(i).row();
            if (r.get("correlation_id") != null) {
                outcomes[i] = commands.answerOutcome(r);
                perCommand.merge((String) r.get("correlation_id"), 1, Integer::sum);
            }
        }
        List<Integer> together = new ArrayList<>();
        List<Integer> alone = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Map<String, Object> r = batch.answers.get(i).row();
            boolean usual = outcomes[i] != null && perCommand.get((String) r.get("correlation_id")) == 1;
            (usual ? together : alone).add(i);
        }
        boolean[] isNew = new boolean[n];
        CommandService.AnswerEffect[] effects = new CommandService.AnswerEffect[n];
        try (Connection c = dataSource.getConnection()) {
            c.setAutoCommit(false);
            try {
                if (!together.isEmpty()) {
                    // PostgreSQL would plan the statement anew on every batch (its generic plan assumes 10 rows per array,
                    // which looks dearer than a custom plan for a few): planning cost more than running it. A generic plan
                    // is kept until the table is analyzed again, though, and one made while commands was small seq-scans
                    // it until then (5 ms per batch on average, 10 ms at the end, in a benchmark that grew it to 30,000
                    // rows): without seq scans the commands are found by primary key.
                    try (Statement s = c.createStatement()) {
                        s.execute("SELECT set_config('plan_cache_mode', 'force_generic_plan', true),"
                                + " set_config('enable_seqscan', 'off', true)");
                    }
                    storeTogether(c, batch, together, outcomes, isNew, effects);
                }
                for (int i : alone) {
                    storeAlone(c, batch.answers.get(i), i, isNew, effects);
                }
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
        List<LiveEvent> events = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (isNew[i]) {
                Answer a = batch.answers.get(i);
                events.addAll(rows.answerEvent(a.row(), a.payload()));
            }
            if (effects[i] != null) {
                commands.answered(effects[i]);
            }
        }
        return events;
    }

    private void storeTogether(Connection c, Batch batch, List<Integer> together, String[] outcomes, boolean[] isNew,
                               CommandService.AnswerEffect[] effects) throws SQLException {
        int m = together.size();
        Object[][] cols = new Object[12][m];
        for (int j = 0; j < m; j++) {
            int i = together.get(j);
            Answer a = batch.answers.get(i);
            Map<String, Object> r = a.row();
            cols[0][j] = i;
            cols[1][j] = a.key();
            cols[2][j] = r.get("ingest_pos");
            cols[3][j] = r.get("esp_id");
            cols[4][j] = r.get("topic_key");
            cols[5][j] = r.get("gpio") == null ? null : ((Number) r.get("gpio")).shortValue();
            cols[6][j] = r.get("correlation_id");
            cols[7][j] = r.get("status");
            cols[8][j] = r.get("payload");
            cols[9][j] = r.get("received_at");
            cols[10][j] = outcomes[i];
            cols[11][j] = CommandService.answerReason(r);
        }
        String[] types = {"int4", "text", "text", "text", "text", "int2", "text", "text", "text", "timestamptz", "text", "text"};
        List<Integer> unmatched = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(ANSWERS_KEYS_ROWS_AND_CHANGES)) {
            for (int col = 0; col < cols.length; col++) {
                ps.setArray(col + 1, c.createArrayOf(types[col], cols[col]));
            }
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    int i = rs.getInt(24);
                    isNew[i] = rs.getBoolean(25);
                    if (!isNew[i]) {
                        // the idempotency check: a key already there (sent twice, redelivered, replayed) means processed
                        continue;
                    }
                    Map<String, Object> r = batch.answers.get(i).row();
                    if (rs.getString(1) != null) {
                        effects[i] = commands.openCommandChanged(rs, r, outcomes[i]);
                    } else {
                        unmatched.add(i);
                    }
                }
            }
        }
        // new answers that found no open command to move on: late answers, unknown commands, a repeated accepted
        for (int i : unmatched) {
            effects[i] = commands.applyUnmatchedAnswer(c, batch.answers.get(i).row());
        }
    }

    private void storeAlone(Connection c, Answer a, int i, boolean[] isNew, CommandService.AnswerEffect[] effects) throws SQLException {
        Map<String, Object> r = a.row();
        try (PreparedStatement ps = c.prepareStatement(ANSWER_KEY_AND_ROW)) {
            ps.setString(1, PROCESSOR);
            ps.setString(2, a.key());
            ps.setTimestamp(3, new Timestamp(System.currentTimeMillis()));
            ps.setString(4, (String) r.get("ingest_pos"));
            ps.setString(5, (String) r.get("esp_id"));
            ps.setString(6, (String) r.get("topic_key"));
            ps.setObject(7, r.get("gpio"), java.sql.Types.SMALLINT);
            ps.setString(8, (String) r.get("correlation_id"));
            ps.setString(9, (String) r.get("status"));
            ps.setString(10, (String) r.get("payload"));
            ps.setTimestamp(11, (Timestamp) r.get("received_at"));
            try (ResultSet rs = ps.executeQuery()) {
                isNew[i] = rs.next() && rs.getInt(1) == 1;
            }
        }
        if (isNew[i]) {
            effects[i] = commands.applyAnswer(c, r);
        }
    }
}
