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
 */
public record Command(String correlationId, String espId, String type, String topic, int qos, String payload, boolean replay) {
}
