package io.kaiser.command;

import io.kaiser.KaiserHeaders;
import org.apache.camel.ExchangeProperty;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import io.kaiser.live.LiveEvent;

/** Live events of the command path. */
public final class CommandEvents {
    private final CommandService commands;

    public CommandEvents(CommandService commands) {
        this.commands = commands;
    }

    /** The command went out: actuator_command, config_published, zone_assignment, ... per type. */
    public List<LiveEvent> published(@ExchangeProperty(KaiserHeaders.COMMAND) Command c) {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("esp_id", c.espId());
        d.put("command_type", c.type());
        d.put("topic", c.topic());
        d.put("correlation_id", c.correlationId());
        d.put("payload", c.payload());
        d.put("traceparent", CommandTrace.of(c));
        String type = switch (c.type()) {
            case "actuator", "emergency_stop" -> "actuator_command";
            case "config" -> "config_published";
            case "zone_assign", "zone_remove" -> "zone_assignment";
            case "subzone_assign", "subzone_remove", "subzone_safe" -> "subzone_assignment";
            default -> "command_published";
        };
        return List.of(LiveEvent.of(type, c.espId(), d));
    }

    /** Commands that ended without an answer (timed_out) or without being sent (expired). */
    public List<LiveEvent> ended(List<String> correlationIds) throws SQLException {
        List<LiveEvent> out = new ArrayList<>();
        for (String id : correlationIds) {
            Map<String, Object> v = commands.view(id);
            if (v == null) {
                continue;
            }
            Map<String, Object> d = new LinkedHashMap<>();
            d.put("esp_id", v.get("esp_id"));
            d.put("command_type", v.get("command_type"));
            d.put("gpio", v.get("gpio"));
            d.put("status", v.get("status"));
            d.put("error", v.get("status_reason"));
            d.put("correlation_id", id);
            d.put("traceparent", v.get("traceparent"));
            out.add(LiveEvent.of("actuator".equals(v.get("command_type")) ? "actuator_command_failed" : "command_failed",
                    (String) v.get("esp_id"), d));
        }
        return out;
    }
}
