package io.kaiser.mqtt;

import io.kaiser.contract.TopicTable;

/** Builds concrete outbound topics from the topic table and the configured kaiser_id. */
public final class TopicBuilder {
    private final TopicTable table;
    private final String kaiserId;

    public TopicBuilder(TopicTable table, String kaiserId) {
        this.table = table;
        this.kaiserId = kaiserId;
    }

    public String outbound(String key, String espId) {
        return table.outbound(key).topic(kaiserId, espId, null);
    }

    public String outbound(String key, String espId, Integer gpio) {
        return table.outbound(key).topic(kaiserId, espId, gpio);
    }

    public int qos(String key) {
        return table.outbound(key).qos();
    }

    public String kaiserId() {
        return kaiserId;
    }
}
