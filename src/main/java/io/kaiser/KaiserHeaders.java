package io.kaiser;

/** Header and exchange property names shared by the Java beans and the YAML routes. */
public final class KaiserHeaders {
    /** Key of the topic in contract/topics.yaml (its {@code property} column), e.g. {@code sensor-data}. */
    public static final String TOPIC_KEY = "kaiserTopicKey";
    /** esp_id parsed from the topic (authoritative over the payload). */
    public static final String ESP_ID = "kaiserEspId";
    /** gpio parsed from the topic, absent on topics without one. */
    public static final String GPIO = "kaiserGpio";
    /** Full MQTT topic the message arrived on. */
    public static final String TOPIC = "kaiserTopic";
    /** Position of the message in the ingest journal: its dedupe key in the database. */
    public static final String INGEST_POS = "kaiserIngestPos";
    /** Time the server received the message (epoch millis). */
    public static final String RECEIVED_AT = "kaiserReceivedAt";
    /** Whether the broker delivered the message as retained. */
    public static final String RETAINED = "kaiserRetained";
    /** Exchange property of an ingest batch: its sensor readings, written when the batch ends. */
    public static final String TELEMETRY_BATCH = "kaiserTelemetry";
    /** Exchange property of an ingest batch: its heartbeats, applied when the batch ends. */
    public static final String HEARTBEAT_BATCH = "kaiserHeartbeats";
    /** Exchange property of an ingest batch: its device answers, applied when the batch ends. */
    public static final String ANSWER_BATCH = "kaiserAnswers";
    /** Exchange property of an ingest batch: rows of the families that write once per batch ({@code DeferredWrites}). */
    public static final String DEFERRED_WRITES = "kaiserDeferredWrites";
    /** Exchange property of a command request: the stored {@code Command} it publishes and waits for. */
    public static final String COMMAND = "kaiserCommand";
    /** The raw message being processed, for the dead letter. */
    public static final String INBOUND = "kaiserInbound";
    /** Event type of a live (WebSocket) event. */
    public static final String EVENT_TYPE = "kaiserEventType";
    /** Correlation id of a live event, when it has one. */
    public static final String CORRELATION_ID = "kaiserCorrelationId";
    /** MQTT topic to publish to (outbound). */
    public static final String PUBLISH_TOPIC = "CamelPahoMqtt5OverrideTopic";
    /** MQTT QoS to publish with (outbound). */
    public static final String PUBLISH_QOS = "CamelPahoMqtt5Qos";
    /** MQTT retain flag for a publish (outbound). */
    public static final String PUBLISH_RETAINED = "CamelPahoMqtt5Retained";

    private KaiserHeaders() {
    }
}
