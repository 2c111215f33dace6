package io.kaiser.ingest;

import java.nio.charset.StandardCharsets;

/**
 * One MQTT message as it was received, with its position in the ingest journal.
 *
 * @param position   journal position, unique and increasing: the message's dedupe key
 * @param topicKey   key of the subscription it arrived on (topics.yaml {@code property})
 * @param topic      full topic
 * @param qos        QoS it was delivered with
 * @param retained   whether the broker delivered it as retained
 * @param receivedAt epoch millis when the server received it
 * @param payload    payload bytes as sent
 * @param next       journal position of the record after this one
 * @param origin     the journal's owner (the server instance id)
 */
public record InboundMessage(long position, String topicKey, String topic, int qos, boolean retained,
                             long receivedAt, byte[] payload, long next, String origin) {

    /** The message's dedupe key in the database: unique across server instances sharing it. */
    public String key() {
        return origin + ":" + position;
    }

    public String payloadText() {
        return new String(payload, StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
        return "InboundMessage[" + position + " " + topic + " " + payload.length + "B]";
    }
}
