package io.kaiser.command;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.eclipse.paho.mqttv5.common.packet.MqttProperties;
import org.eclipse.paho.mqttv5.common.packet.UserProperty;

/**
 * W3C trace context (https://www.w3.org/TR/trace-context/) for the command path: the REST request's
 * {@code traceparent} header, or a new one, travels with the command (commands.traceparent, the payload field
 * {@code traceparent} for MQTT 3.1.1 devices, the MQTT 5 user property {@code traceparent}, the REST answer, the
 * live event and the log lines), so one id finds a command in every view.
 */
public final class CommandTrace {
    /** version 00 (or a later one, read as 00), 32 hex trace id, 16 hex parent id, 2 hex flags; lower case only. */
    private static final Pattern TRACEPARENT = Pattern.compile("^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$");
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String NAME = "traceparent";

    private CommandTrace() {
    }

    /** A valid incoming traceparent as is, else a new sampled one ({@code 00-<32 hex>-<16 hex>-01}). */
    public static String continueOrStart(String incoming) {
        String valid = valid(incoming);
        return valid != null ? valid : create();
    }

    /** The traceparent if it is valid (normalised to version 00's four fields), else null. */
    public static String valid(String value) {
        if (value == null) {
            return null;
        }
        var m = TRACEPARENT.matcher(value.trim());
        if (!m.matches()) {
            return null;
        }
        String version = m.group(1);
        String traceId = m.group(2);
        String parentId = m.group(3);
        if ("ff".equals(version) || ("00".equals(version) && m.group(5) != null)
                || traceId.chars().allMatch(ch -> ch == '0') || parentId.chars().allMatch(ch -> ch == '0')) {
            return null;
        }
        return "00-" + traceId + "-" + parentId + "-" + m.group(4);
    }

    public static String create() {
        byte[] trace = new byte[16];
        byte[] span = new byte[8];
        do {
            RANDOM.nextBytes(trace);
            RANDOM.nextBytes(span);
        } while (allZero(trace) || allZero(span));
        return "00-" + HexFormat.of().formatHex(trace) + "-" + HexFormat.of().formatHex(span) + "-01";
    }

    /** The trace id part (32 hex) of a traceparent, or null. */
    public static String traceId(String traceparent) {
        return traceparent == null || traceparent.length() < 35 ? null : traceparent.substring(3, 35);
    }

    /** The command's traceparent, or null (commands created before V7). */
    public static String of(Command command) {
        return command == null ? null : command.traceparent();
    }

    /** The payload's traceparent field, or null. */
    static String fromPayload(String payload) {
        if (payload == null || !payload.contains(NAME)) {
            return null;
        }
        try {
            Object v = JSON.readValue(payload, Map.class).get(NAME);
            return v instanceof String s ? s : null;
        } catch (Exception e) {
            return null;
        }
    }

    /** MQTT 5 properties for the publish (header CamelPahoMqtt5MsgProperties): the user property traceparent. */
    static MqttProperties mqttProperties(Command command) {
        MqttProperties p = new MqttProperties();
        String tp = of(command);
        if (tp != null) {
            p.setUserProperties(List.of(new UserProperty(NAME, tp)));
        }
        return p;
    }

    private static boolean allZero(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }
}
