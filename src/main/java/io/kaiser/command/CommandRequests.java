package io.kaiser.command;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import io.kaiser.api.ApiProblem;

/** Turns REST command bodies into {@link CommandSpec}s; every bad field is a 400 naming the field. */
public final class CommandRequests {
    private static final Set<String> ACTUATOR_COMMANDS = Set.of("ON", "OFF", "PWM", "TOGGLE");
    /** The firmware's system command vocabulary (lowercase). */
    private static final Set<String> SYSTEM_COMMANDS = Set.of("reboot", "factory_reset", "status", "diagnostics", "get_config",
            "safe_mode", "exit_safe_mode", "set_log_level", "onewire/scan");

    /** {@code POST /actuators/{esp_id}/{gpio}/command {command, value?, duration?}}. */
    public CommandSpec actuator(String espId, Integer gpio, Map<String, Object> body) {
        Object raw = body.get("command");
        if (!(raw instanceof String s) || !ACTUATOR_COMMANDS.contains(s.toUpperCase())) {
            throw ApiProblem.badRequest("command must be one of ON, OFF, PWM, TOGGLE");
        }
        String command = s.toUpperCase();
        Object v = body.get("value");
        double value;
        if (v == null) {
            if (command.equals("PWM")) {
                throw ApiProblem.badRequest("value is required for PWM (0.0 to 1.0)");
            }
            value = command.equals("OFF") ? 0.0 : 1.0;
        } else if (v instanceof Number n && n.doubleValue() >= 0 && n.doubleValue() <= 1) {
            value = n.doubleValue();
        } else {
            throw ApiProblem.badRequest("value must be a number from 0.0 to 1.0");
        }
        if (command.equals("ON")) {
            value = v == null ? 1.0 : value;
        } else if (command.equals("OFF")) {
            value = 0.0;
        }
        Object d = body.getOrDefault("duration", 0);
        if (!(d instanceof Integer duration) || duration < 0 || duration > 86_400) {
            throw ApiProblem.badRequest("duration must be an integer number of seconds from 0 to 86400");
        }
        unknownFields(body, Set.of("command", "value", "duration"));
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("command", command);
        f.put("value", value);
        f.put("duration", duration);
        return new CommandSpec("actuator", espId, gpio, "actuator-command", f, "actuator-command");
    }

    /** {@code POST /sensors/{esp_id}/{gpio}/measure}. */
    public CommandSpec measure(String espId, Integer gpio, Map<String, Object> body) {
        unknownFields(body, Set.of());
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("command", "measure");
        return new CommandSpec("measure", espId, gpio, "sensor-command", f, "sensor-measure");
    }

    /** {@code POST /esp/devices/{esp_id}/system-command {command, params?}}. */
    public CommandSpec system(String espId, Map<String, Object> body) {
        Object raw = body.get("command");
        if (!(raw instanceof String s) || !SYSTEM_COMMANDS.contains(s.toLowerCase())) {
            throw ApiProblem.badRequest("command must be one of " + String.join(", ", SYSTEM_COMMANDS.stream().sorted().toList()));
        }
        Object params = body.getOrDefault("params", Map.of());
        if (!(params instanceof Map)) {
            throw ApiProblem.badRequest("params must be a JSON object");
        }
        unknownFields(body, Set.of("command", "params"));
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("command", s.toLowerCase());
        f.put("params", params);
        return new CommandSpec("system", espId, null, "system-command", f, "system-command");
    }

    private static void unknownFields(Map<String, Object> body, Set<String> allowed) {
        List<String> unknown = body.keySet().stream().filter(k -> !allowed.contains(k)).sorted().toList();
        if (!unknown.isEmpty()) {
            throw ApiProblem.badRequest("unknown field(s): " + String.join(", ", unknown));
        }
    }
}
