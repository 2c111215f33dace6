package io.kaiser.command;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/**
 * A validated command request, before it has an id.
 *
 * @param type     command type: actuator, measure, system, config, zone_assign, zone_remove, subzone_assign,
 *                 subzone_remove, subzone_safe, emergency_stop, emergency_clear (keys of kaiser.command.* properties)
 * @param espId    target device
 * @param gpio     target gpio, or null
 * @param topicKey outbound topic key in contract/topics.yaml
 * @param fields   payload fields (without ids and timestamp, which are added when the command is created)
 * @param endpoint the REST endpoint it came from (scopes Idempotency-Key)
 */
public record CommandSpec(String type, String espId, Integer gpio, String topicKey, Map<String, Object> fields, String endpoint) {

    /** A stable hash of what was asked, to tell a replay from a different request under the same Idempotency-Key. */
    public String requestHash() {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            String canonical = endpoint + "|" + type + "|" + espId + "|" + gpio + "|" + new TreeMap<>(fields);
            return HexFormat.of().formatHex(md.digest(canonical.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
