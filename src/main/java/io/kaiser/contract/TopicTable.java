package io.kaiser.contract;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.snakeyaml.engine.v2.api.Load;
import org.snakeyaml.engine.v2.api.LoadSettings;

/** contract/topics.yaml, the machine-readable topic table, loaded from the classpath. */
public final class TopicTable {
    public static final String RESOURCE = "contract/topics.yaml";

    /** One row of the table. */
    public record Topic(String property, String pattern, String direction, int qos, boolean retained,
                        String schema, String family) {
        public boolean deviceToServer() {
            return "device-to-server".equals(direction);
        }

        /** The subscription filter for this topic: placeholders of one level become {@code +}. */
        public String subscription(String kaiserId) {
            return pattern.replace("{kaiser_id}", kaiserId).replace("{esp_id}", "+").replace("{gpio}", "+");
        }

        public boolean hasGpio() {
            return pattern.contains("{gpio}");
        }

        /** The concrete topic for one device (gpio may be null when the topic has none). */
        public String topic(String kaiserId, String espId, Integer gpio) {
            String t = pattern.replace("{kaiser_id}", kaiserId).replace("{esp_id}", espId);
            return gpio == null ? t : t.replace("{gpio}", Integer.toString(gpio));
        }
    }

    private final Map<String, Topic> byProperty;
    private final String espIdPattern;

    public TopicTable() {
        this(TopicTable.class.getClassLoader().getResourceAsStream(RESOURCE));
    }

    @SuppressWarnings("unchecked")
    public TopicTable(InputStream in) {
        if (in == null) {
            throw new IllegalStateException(RESOURCE + " is not on the classpath");
        }
        try (in) {
            Map<String, Object> doc = (Map<String, Object>) new Load(LoadSettings.builder().build()).loadFromInputStream(in);
            this.espIdPattern = (String) doc.get("esp_id_pattern");
            Map<String, Topic> topics = new LinkedHashMap<>();
            for (Map<String, Object> row : (List<Map<String, Object>>) doc.get("topics")) {
                Topic t = new Topic((String) row.get("property"), (String) row.get("pattern"), (String) row.get("direction"),
                        ((Number) row.get("qos")).intValue(), Boolean.TRUE.equals(row.get("retained")),
                        (String) row.get("schema"), (String) row.get("family"));
                if (topics.put(t.property() + "|" + t.direction(), t) != null) {
                    throw new IllegalStateException("duplicate topic " + t.property());
                }
            }
            this.byProperty = Collections.unmodifiableMap(topics);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public List<Topic> all() {
        return new ArrayList<>(byProperty.values());
    }

    public List<Topic> deviceToServer() {
        return byProperty.values().stream().filter(Topic::deviceToServer).toList();
    }

    /** The inbound (device-to-server) topic with this key. */
    public Topic inbound(String property) {
        Topic t = byProperty.get(property + "|device-to-server");
        if (t == null) {
            throw new IllegalArgumentException("no device-to-server topic " + property);
        }
        return t;
    }

    /** The outbound (server-to-device or server-to-all) topic with this key. */
    public Topic outbound(String property) {
        Topic t = byProperty.get(property + "|server-to-device");
        if (t == null) {
            t = byProperty.get(property + "|server-to-all");
        }
        if (t == null) {
            throw new IllegalArgumentException("no outbound topic " + property);
        }
        return t;
    }

    public String espIdPattern() {
        return espIdPattern;
    }
}
