package io.kaiser.mqtt;

/**
 * An MQTT topic filter split into its levels once, matched against topics without allocating. The ingest client
 * dispatches every message to the route whose filter matches; Paho's {@code MqttTopicValidator.isMatched} validated
 * and re-parsed the filter for every message and every route (a third of the receive thread's time under load).
 */
final class TopicFilter {
    private final String[] levels;

    TopicFilter(String filter) {
        this.levels = filter.split("/", -1);
    }

    boolean matches(String topic) {
        int pos = 0;
        int n = topic.length();
        for (int i = 0; i < levels.length; i++) {
            String level = levels[i];
            if (level.equals("#")) {
                // '#' also matches the parent level ("a/#" matches "a"), but not topics starting with '$'
                return !(i == 0 && n > 0 && topic.charAt(0) == '$');
            }
            if (pos > n) {
                return false;
            }
            int end = topic.indexOf('/', pos);
            if (end < 0) {
                end = n;
            }
            if (level.equals("+")) {
                if (i == 0 && end > pos && topic.charAt(0) == '$') {
                    return false;
                }
            } else if (end - pos != level.length() || !topic.regionMatches(pos, level, 0, level.length())) {
                return false;
            }
            pos = end + 1;
        }
        return pos == n + 1;
    }
}
