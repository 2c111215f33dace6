package io.kaiser.command;

/**
 * A command as stored: what to publish where.
 *
 * @param correlationId the command's id (UUID, also sent as intent_id)
 * @param espId         target device
 * @param type          command type
 * @param topic         concrete MQTT topic
 * @param qos           publish QoS (from the contract)
 * @param payload       JSON payload as sent
 * @param replay        true when an Idempotency-Key replay returned an earlier command (nothing is published)
 * @param traceparent   W3C trace context of the command (commands.traceparent), or null
 * @param claimed       true when this caller claimed the command for publishing when it stored it (REST), so it publishes
 *                      it without claiming it again; false for commands claimed at publish time (outbox, emergency)
 */
public record Command(String correlationId, String espId, String type, String topic, int qos, String payload, boolean replay,
                      String traceparent, boolean claimed) {

    public Command(String correlationId, String espId, String type, String topic, int qos, String payload, boolean replay,
                   String traceparent) {
        this(correlationId, espId, type, topic, qos, payload, replay, traceparent, false);
    }

    /** A command whose trace context is the payload's {@code traceparent} field, if any. */
    public Command(String correlationId, String espId, String type, String topic, int qos, String payload, boolean replay) {
        this(correlationId, espId, type, topic, qos, payload, replay, CommandTrace.fromPayload(payload));
    }

    /** As log lines show a command: {@code <correlation id> <type> to <topic> (traceparent=...)}, without the payload. */
    @Override
    public String toString() {
        return correlationId + " " + type + " to " + topic + " (traceparent=" + (traceparent == null ? "-" : traceparent) + ")";
    }
}
