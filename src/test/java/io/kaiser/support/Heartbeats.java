package io.kaiser.support;

import java.time.Duration;

/** Heartbeats as the original firmware sends them, and the server's ACKs to them. */
public final class Heartbeats {
    /** A heartbeat exactly as the original firmware sends it (upstream-firmware.md 3.2); format with the esp_id twice. */
    public static final String ORIGINAL = """
            {"esp_id":"%s","zone_id":"gh_1","master_zone_id":"gh","zone_assigned":true,
             "ts":1735818000,"time_valid":true,"boot_sequence_id":"%s-b3-r1","reset_reason":"POWERON",
             "segment_start_ts":1735817001,"uptime":999,"heap_free":142336,"wifi_rssi":-61,"sensor_count":2,
             "actuator_count":1,"wifi_ip":"192.168.0.50","active_handover_epoch":0,"handover_completed_epoch":0,
             "persistence_degraded":false,"persistence_degraded_reason":"NONE","runtime_state_degraded":false,
             "mqtt_circuit_breaker_open":false,"wifi_circuit_breaker_open":false,"network_degraded":false,
             "config_status":{"wifi_configured":true,"zone_assigned":true,"system_configured":true,
                              "subzone_count":0,"boot_count":3,"state":9}}""";

    private Heartbeats() {
    }

    public static String original(String espId) {
        return ORIGINAL.formatted(espId, espId);
    }

    /**
     * The next heartbeat ACK of this server for the device, or null. Other programs on a shared broker (a stand-in
     * ACK daemon, another test's server) may answer on the same topic; this server's ACKs carry its session id.
     */
    public static MqttTestClient.Received serverAck(MqttTestClient device, KaiserServer server, String espId, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            MqttTestClient.Received r = device.next(server.topic(espId, "system/heartbeat/ack"), Duration.ofNanos(deadline - System.nanoTime()));
            if (r != null && r.payload().contains("\"session_id\":\"" + espId + ":")) {
                return r;
            }
        }
        return null;
    }
}
