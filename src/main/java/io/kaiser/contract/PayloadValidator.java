package io.kaiser.contract;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
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
    /** Header set (with the reason) when a message is valid but needs no processing. */
    public static final String IGNORE = "kaiserIgnore";

    private final int maxPayloadBytes;
    private final int maxGpio;
    private final Pattern espIdPattern;
    private final ObjectMapper mapper;
    private final Map<String, JsonSchema> schemas = new HashMap<>();
    private final Map<String, Inbound> inbound = new HashMap<>();

    /** What the check needs of one device-to-server topic, worked out once. */
    private record Inbound(TopicTable.Topic topic, int levels, int espIdLevel, int gpioLevel, JsonSchema schema) {
        static Inbound of(TopicTable.Topic t, JsonSchema schema) {
            String[] pattern = t.pattern().split("/", -1);
            int esp = -1;
            int gpio = -1;
            for (int i = 0; i < pattern.length; i++) {
                switch (pattern[i]) {
                    case "{esp_id}" -> esp = i;
                    case "{gpio}" -> gpio = i;
                    default -> { }
                }
            }
            return new Inbound(t, pattern.length, esp, gpio, schema);
        }
    }

    public PayloadValidator(TopicTable topics, int maxPayloadBytes, int maxGpio) {
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
        for (TopicTable.Topic t : topics.deviceToServer()) {
            inbound.put(t.property(), Inbound.of(t, t.schema() == null ? null : schemas.get(t.schema())));
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
        Inbound t = inbound(m.topicKey());
        if (m.payload().length == 0 && t.topic().retained()) {
            // an empty retained message is how a retained topic is cleared (the server clears wills itself)
            in.setHeader(IGNORE, "retained topic cleared");
            return;
        }
        Parsed parsed = check(t, m.topic(), levels, m.payload());
        in.setHeader(KaiserHeaders.ESP_ID, parsed.espId());
        if (parsed.gpio() != null) {
            in.setHeader(KaiserHeaders.GPIO, parsed.gpio());
        }
        in.setBody(parsed.payload());
    }

    private Inbound inbound(String key) {
        Inbound t = inbound.get(key);
        if (t == null) {
            throw new IllegalArgumentException("no device-to-server topic " + key);
        }
        return t;
    }

    /** The result of a successful check. */
    public record Parsed(String espId, Integer gpio, Map<String, Object> payload) { }

    public Parsed check(String key, String topic, byte[] payload) {
        return check(inbound(key), topic, topic.split("/", -1), payload);
    }

    private Parsed check(Inbound t, String topic, String[] levels, byte[] payload) {
        if (levels.length != t.levels()) {
            throw new KaiserRejection("invalid_topic", "topic " + topic + " does not have the shape " + t.topic().pattern());
        }
        String espId = t.espIdLevel() < 0 ? null : levels[t.espIdLevel()];
        Integer gpio = t.gpioLevel() < 0 ? null : parseGpio(levels[t.gpioLevel()]);
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
        String schemaName = t.topic().schema();
        if (t.schema() != null) {
            Set<ValidationMessage> errors = t.schema().validate(node);
            if (!errors.isEmpty()) {
                String detail = errors.stream().map(ValidationMessage::getMessage).sorted().limit(5).collect(Collectors.joining("; "));
                throw new KaiserRejection("schema_violation", schemaName + ": " + detail);
            }
        }
        String unstorable = unstorable(node);
        if (unstorable != null) {
            throw new KaiserRejection("schema_violation", schemaName + ": $" + unstorable);
        }
        JsonNode payloadEsp = node.get("esp_id");
        if (payloadEsp != null && !payloadEsp.isNull() && !espId.equals(payloadEsp.asText())) {
            throw new KaiserRejection("esp_id_mismatch", "payload esp_id " + payloadEsp.asText() + " differs from topic esp_id " + espId);
        }
        JsonNode payloadGpio = node.get("gpio");
        if (gpio != null && payloadGpio != null && payloadGpio.isInt() && payloadGpio.asInt() != gpio && payloadGpio.asInt() != 255) {
            throw new KaiserRejection("gpio_mismatch", "payload gpio " + payloadGpio.asInt() + " differs from topic gpio " + gpio);
        }
        return new Parsed(espId, gpio, toMap(node));
    }

    /** The tree as plain Java values, the same types Jackson's {@code convertValue(node, Map)} gives, without its round trip. */
    private static Map<String, Object> toMap(JsonNode object) {
        Map<String, Object> map = new LinkedHashMap<>(Math.max(4, object.size() * 4 / 3 + 1));
        var fields = object.fields();
        while (fields.hasNext()) {
            var f = fields.next();
            map.put(f.getKey(), toValue(f.getValue()));
        }
        return map;
    }

    private static Object toValue(JsonNode node) {
        return switch (node.getNodeType()) {
            case OBJECT -> toMap(node);
            case ARRAY -> {
                List<Object> list = new ArrayList<>(node.size());
                for (JsonNode child : node) {
                    list.add(toValue(child));
                }
                yield list;
            }
            case STRING -> node.textValue();
            case NUMBER -> node.numberValue();
            case BOOLEAN -> node.booleanValue();
            case NULL, MISSING -> null;
            case BINARY, POJO -> throw new IllegalStateException("unexpected node " + node.getNodeType() + " in a parsed payload");
        };
    }

    /**
     * What in the payload the database could not store, or null: a number beyond a double (1e400 parses as
     * Infinity) or a NUL character in a string or key (PostgreSQL text cannot hold U+0000; one such message would
     * fail its whole ingest batch again and again).
     */
    private static String unstorable(JsonNode node) {
        if (node.isNumber()) {
            return Double.isFinite(node.doubleValue()) ? null : ": number out of range (not a finite number)";
        }
        if (node.isTextual()) {
            return node.textValue().indexOf('\u0000') >= 0 ? ": NUL character in a string" : null;
        }
        if (node.isArray()) {
            int i = 0;
            for (JsonNode child : node) {
                String bad = unstorable(child);
                if (bad != null) {
                    return "[" + i + "]" + bad;
                }
                i++;
            }
        } else if (node.isObject()) {
            var fields = node.fields();
            while (fields.hasNext()) {
                var f = fields.next();
                if (f.getKey().indexOf('\u0000') >= 0) {
                    return ": NUL character in a field name";
                }
                String bad = unstorable(f.getValue());
                if (bad != null) {
                    return "." + f.getKey() + bad;
                }
            }
        }
        return null;
    }

    private Integer parseGpio(String level) {
        int gpio;
        if (!isDigits(level, 9)) {
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

    private static boolean isDigits(String s, int maxLength) {
        if (s.isEmpty() || s.length() > maxLength) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') {
                return false;
            }
        }
        return true;
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
