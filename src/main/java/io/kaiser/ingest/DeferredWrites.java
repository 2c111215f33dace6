package io.kaiser.ingest;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.kaiser.KaiserHeaders;
import org.apache.camel.Body;
import org.apache.camel.ExchangeProperty;
import org.apache.camel.Header;

/**
 * Rows that a topic family's route writes once per journal batch instead of once per message. The route adds its
 * row here ({@link #add}); when the batch's messages are routed, {@code ingest-dispatch} hands each topic's rows, in
 * arrival order, to {@code direct:store-<topic key>}, which writes them as one JDBC batch (camel-sql
 * {@code batch=true}): one round trip and one commit for all of them. Per message, each was its own statement and
 * commit, and a fleet sends a diagnostics snapshot per device a minute.
 * <p>
 * For writes that nothing else in the batch reads back: the latest snapshot or metrics kept on a device row, an
 * event row. A replayed batch writes the same rows again, so their statements must be idempotent.
 */
public final class DeferredWrites {

    /** The rows of one journal batch, per topic key, in arrival order. */
    public static final class Batch {
        private final Map<String, List<Map<String, Object>>> byTopic = new LinkedHashMap<>();

        public boolean isEmpty() {
            return byTopic.isEmpty();
        }

        /** Topic key -> its rows, for a split that sends each entry to {@code direct:store-<key>}. */
        public List<Map.Entry<String, List<Map<String, Object>>>> byTopic() {
            return new ArrayList<>(byTopic.entrySet());
        }

        void add(String topicKey, Map<String, Object> row) {
            byTopic.computeIfAbsent(topicKey, k -> new ArrayList<>()).add(row);
        }
    }

    public Batch newBatch() {
        return new Batch();
    }

    /** Adds the message's row (the body) to its batch under the message's topic key. */
    public void add(@ExchangeProperty(KaiserHeaders.DEFERRED_WRITES) Batch batch, @Header(KaiserHeaders.TOPIC_KEY) String topicKey,
            @Body Map<String, Object> row) {
        batch.add(topicKey, row);
    }
}
