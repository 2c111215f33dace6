package io.kaiser.mqtt;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;

import org.eclipse.paho.mqttv5.common.util.MqttTopicValidator;
import org.junit.jupiter.api.Test;

class TopicFilterTest {
    static final List<String> FILTERS = List.of(
            "kaiser/god/esp/+/sensor/+/data", "kaiser/god/esp/+/system/heartbeat", "kaiser/god/esp/+/system/heartbeat_metrics",
            "kaiser/god/esp/+/system/will", "kaiser/god/esp/+/actuator/+/status", "kaiser/god/esp/+/sensor/batch",
            "kaiser/god/esp/#", "kaiser/+/esp/+/#", "#", "+", "+/+", "a/#", "a/+", "a/+/c", "a/b", "a/b/#", "/+", "+/", "$SYS/#");
    static final List<String> TOPICS = List.of(
            "kaiser/god/esp/ESP_1/sensor/4/data", "kaiser/god/esp/ESP_1/sensor/batch", "kaiser/god/esp/ESP_1/sensor/4/data/x",
            "kaiser/god/esp/ESP_1/system/heartbeat", "kaiser/god/esp/ESP_1/system/heartbeat_metrics",
            "kaiser/god/esp/ESP_1/system/heartbeat/ack", "kaiser/god/esp/ESP_1/system/will", "kaiser/god/esp/ESP_1/actuator/5/status",
            "kaiser/other/esp/ESP_1/sensor/4/data", "kaiser/god/esp", "kaiser/god/esp/", "kaiser/god/espx/ESP_1/sensor/4/data",
            "a", "a/", "a/b", "a/b/", "a/b/c", "a//c", "a/x/c", "ab", "/", "/a", "b", "$SYS/broker", "$SYS", "");

    @Test
    void should_match_exactly_as_the_mqtt_rules_paho_implements() {
        for (String f : FILTERS) {
            TopicFilter filter = new TopicFilter(f);
            for (String t : TOPICS) {
                boolean emptyLevel = t.startsWith("/") || t.endsWith("/") || t.contains("//");
                if (t.isEmpty() || emptyLevel || (t.startsWith("$") && (f.startsWith("#") || f.startsWith("+")))) {
                    // not a topic name (Paho throws), or where Paho differs from the broker and the spec (tested below)
                    continue;
                }
                assertThat(filter.matches(t)).as(f + " vs " + t).isEqualTo(MqttTopicValidator.isMatched(f, t));
            }
        }
    }

    @Test
    void should_tell_the_families_of_the_ingest_client_apart() {
        assertThat(new TopicFilter("kaiser/god/esp/+/sensor/+/data").matches("kaiser/god/esp/ESP_1/sensor/4/data")).isTrue();
        assertThat(new TopicFilter("kaiser/god/esp/+/sensor/+/data").matches("kaiser/god/esp/ESP_1/sensor/4/response")).isFalse();
        assertThat(new TopicFilter("kaiser/god/esp/+/system/heartbeat").matches("kaiser/god/esp/ESP_1/system/heartbeat/ack")).isFalse();
        assertThat(new TopicFilter("a/#").matches("a")).isTrue();
    }

    @Test
    void should_match_empty_levels_as_mosquitto_delivers_them() {
        // mosquitto_sub -t 'kaiser/+/esp/+/#' receives a publish to 'kaiser/god/esp/' ('+' takes the empty level, '#'
        // the parent); Paho's isMatched says no, but the dispatcher routes what the broker delivered
        assertThat(new TopicFilter("kaiser/+/esp/+/#").matches("kaiser/god/esp/")).isTrue();
        // also delivered by Mosquitto 2: 'q/' to '+/+' and 'q/+', 'q//c' to 'q/+/c', '/' to '+/+'; 'q' not to 'q/+'
        assertThat(new TopicFilter("+/+").matches("q/")).isTrue();
        assertThat(new TopicFilter("q/+").matches("q/")).isTrue();
        assertThat(new TopicFilter("q/+/c").matches("q//c")).isTrue();
        assertThat(new TopicFilter("+/+").matches("/")).isTrue();
        assertThat(new TopicFilter("q/+").matches("q")).isFalse();
    }

    @Test
    void should_not_match_dollar_topics_with_a_leading_wildcard() {
        // MQTT 5 4.7.2: a filter starting with a wildcard does not match topic names beginning with '$'
        assertThat(new TopicFilter("#").matches("$SYS/broker")).isFalse();
        assertThat(new TopicFilter("+/broker").matches("$SYS/broker")).isFalse();
        assertThat(new TopicFilter("$SYS/#").matches("$SYS/broker")).isTrue();
    }
}
