package io.kaiser.contract;

import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import io.kaiser.KaiserHeaders;
import io.kaiser.ingest.InboundMessage;
import org.apache.camel.Exchange;
import org.apache.camel.Message;

/**
 * Checks one inbound MQTT message against the contract: topic shape, size, JSON, the payload schema
 * from {@code contract/schemas}, and that the payload's {@code esp_id} and {@code gpio} agree with the topic.
 * On success the body becomes the payload as a {@code Map}; on failure a {@link KaiserRejection} names the reason.
 */
public final class PayloadValidator {
    private static final TypeReference<LinkedHashMap<String, Object>> MAP = new TypeReference<>() { };
    /** Header set (with the reason) when a message is valid but needs no processing. */
    public static final String IGNORE = "kaiserIgnore";

    private final TopicTable topics;
    private final int maxPayloadBytes;
    private final int maxGpio;
    private final Pattern espIdPattern;
    private final ObjectMapper mapper;
    private final Map<String, JsonSchema> schemas = new HashMap<>();

    public PayloadValidator(TopicTable topics, int maxPayloadBytes, int maxGpio) {
        this.topics = topics;
        this.maxPayloadBytes = maxPayloadBytes;
        this.maxGpio = maxGpio;
        this.espIdPattern = Pattern.compile(topics.espIdPattern());
        this.mapper = new ObjectMapper()
                .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
                .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
        mapper.getFactory().setStreamReadConstraints(StreamReadConstraints.builder()
                .maxNestingDepth(32).maxNumberLength(64).maxStringLength(maxPayloadBytes).build());
        JsonSchemaFactory factory = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V7);
        for (TopicTable.Topic t : topics.all()) {
            if (t.schema() != null && !schemas.containsKey(t.schema())) {
                schemas.put(t.schema(), load(factory, t.schema()));
            }
        }
    }

    private static JsonSchema load(JsonSchemaFactory factory, String name) {
        String resource = "contract/schemas/" + name + ".schema.json";
        try (InputStream in = PayloadValidator.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("missing schema " + resource);
            }
            return factory.getSchema(in);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + resource, e);
        }
    }

    /**
     * Camel entry point: the body is an {@link InboundMessage} from the journal. Sets the message's headers
     * (topic key, topic, esp_id, gpio, journal position, receive time) and replaces the body by the payload map.
     */
    public void validate(Exchange exchange) {
        Message in = exchange.getMessage();
        InboundMessage m = in.getBody(InboundMessage.class);
        in.setHeader(KaiserHeaders.INBOUND, m);
        in.setHeader(KaiserHeaders.TOPIC_KEY, m.topicKey());
        in.setHeader(KaiserHeaders.TOPIC, m.topic());
        in.setHeader(KaiserHeaders.INGEST_POS, m.key());
        in.setHeader(KaiserHeaders.RECEIVED_AT, m.receivedAt());
        in.setHeader(KaiserHeaders.RETAINED, m.retained());
        String[] levels = m.topic().split("/", -1);
        if (levels.length > 3 && espIdPattern.matcher(levels[3]).matches()) {
            in.setHeader(KaiserHeaders.ESP_ID, levels[3]);
        }
        if (m.payload().length == 0 && topics.inbound(m.topicKey()).retained()) {
            // an empty retained message is how a retained topic is cleared (the server clears wills itself)
            in.setHeader(IGNORE, "retained topic cleared");
            return;
        }
        Parsed parsed = check(m.topicKey(), m.topic(), m.payload());
        in.setHeader(KaiserHeaders.ESP_ID, parsed.espId());
        if (parsed.gpio() != null) {
            in.setHeader(KaiserHeaders.GPIO, parsed.gpio());
        }
        in.setBody(parsed.payload());
    }

    /** The result of a successful check. */
    public record Parsed(String espId, Integer gpio, Map<String, Object> payload) { }

    public Parsed check(String key, String topic, byte[] payload) {
        TopicTable.Topic t = topics.inbound(key);
        String[] levels = topic.split("/", -1);
        String[] pattern = t.pattern().split("/", -1);
        if (levels.length != pattern.length) {
            throw new KaiserRejection("invalid_topic", "topic " + topic + " does not have the shape " + t.pattern());
        }
        String espId = null;
        Integer gpio = null;
        for (int i = 0; i < pattern.length; i++) {
            switch (pattern[i]) {
                case "{esp_id}" -> espId = levels[i];
                case "{gpio}" -> gpio = parseGpio(levels[i]);
                default -> { }
            }
        }
        if (espId == null || !espIdPattern.matcher(espId).matches()) {
            throw new KaiserRejection("invalid_esp_id", "esp_id in topic must match " + espIdPattern.pattern());
        }
        if (payload == null || payload.length == 0) {
            throw new KaiserRejection("empty_payload", "payload is empty");
        }
        if (payload.length > maxPayloadBytes) {
            throw new KaiserRejection("oversize", "payload of " + payload.length + " bytes exceeds the limit of " + maxPayloadBytes);
        }
        JsonNode node;
        try {
            node = mapper.readTree(payload);
        } catch (IOException e) {
            throw new KaiserRejection("invalid_json", "payload is not valid JSON: " + firstLine(e.getMessage()));
        }
        if (node == null || !node.isObject()) {
            throw new KaiserRejection("not_an_object", "payload must be a JSON object");
        }
        JsonSchema schema = schemas.get(t.schema());
        if (schema != null) {
            Set<ValidationMessage> errors = schema.validate(node);
            if (!errors.isEmpty()) {
                String detail = errors.stream().map(ValidationMessage::getMessage).sorted().limit(5).collect(Collectors.joining("; "));
                throw new KaiserRejection("schema_violation", t.schema() + ": " + detail);
            }
        }
        String unstorable = unstorable(node, "$");
        if (unstorable != null) {
            throw new KaiserRejection("schema_violation", t.schema() + ": " + unstorable);
        }
        JsonNode payloadEsp = node.get("esp_id");
        if (payloadEsp != null && !payloadEsp.isNull() && !espId.equals(payloadEsp.asText())) {
            throw new KaiserRejection("esp_id_mismatch", "payload esp_id " + payloadEsp.asText() + " differs from topic esp_id " + espId);
        }
        JsonNode payloadGpio = node.get("gpio");
        if (gpio != null && payloadGpio != null && payloadGpio.isInt() && payloadGpio.asInt() != gpio && payloadGpio.asInt() != 255) {
            throw new KaiserRejection("gpio_mismatch", "payload gpio " + payloadGpio.asInt() + " differs from topic gpio " + gpio);
        }
        return new Parsed(espId, gpio, mapper.convertValue(node, MAP));
    }

    /**
     * What in the payload the database could not store, or null: a number beyond a double (1e400 parses as
     * Infinity) or a NUL character in a string or key (PostgreSQL text cannot hold U+0000; one such message would
     * fail its whole ingest batch again and again).
     */
    private static String unstorable(JsonNode node, String path) {
        if (node.isNumber()) {
            return Double.isFinite(node.doubleValue()) ? null : path + ": number out of range (not a finite number)";
        }
        if (node.isTextual()) {
            return node.textValue().indexOf('\u0000') >= 0 ? path + ": NUL character in a string" : null;
        }
        if (node.isArray()) {
            int i = 0;
            for (JsonNode child : node) {
                String bad = unstorable(child, path + "[" + i++ + "]");
                if (bad != null) {
                    return bad;
                }
            }
        } else if (node.isObject()) {
            var fields = node.fields();
            while (fields.hasNext()) {
                var f = fields.next();
                if (f.getKey().indexOf('\u0000') >= 0) {
                    return path + ": NUL character in a field name";
                }
                String bad = unstorable(f.getValue(), path + "." + f.getKey());
                if (bad != null) {
                    return bad;
                }
            }
        }
        return null;
    }

    private Integer parseGpio(String level) {
        int gpio;
        if (!level.matches("[0-9]{1,9}")) {
            throw new KaiserRejection("unknown_gpio", "gpio '" + abbreviate(level) + "' in topic is not a number");
        }
        try {
            gpio = Integer.parseInt(level);
        } catch (NumberFormatException e) {
            throw new KaiserRejection("unknown_gpio", "gpio '" + abbreviate(level) + "' in topic is not a number");
        }
        if (gpio < 0 || gpio > maxGpio) {
            throw new KaiserRejection("unknown_gpio", "gpio " + gpio + " in topic is outside 0.." + maxGpio);
        }
        return gpio;
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return abbreviate(nl < 0 ? s : s.substring(0, nl));
    }

    private static String abbreviate(String s) {
        return s.length() > 120 ? s.substring(0, 120) + "..." : s;
    }
}
