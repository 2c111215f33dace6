package io.kaiser.e2e;

import java.io.IOException;
import java.time.Duration;
import java.util.Map;

import io.kaiser.support.E2eStack;
import io.kaiser.support.LiveClient;
import io.kaiser.support.TcpLink;
import io.kaiser.support.VirtualDevices;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

/**
 * Fault: a device's connection goes dark (Wi-Fi gone: the link is blackholed and the device frozen, so the broker
 * still holds the old connection for up to 1.5 keepalives) and the device comes back on a new connection with the
 * same client id before the broker noticed. The broker hands the session over; the server must not see a false
 * offline: no LWT of the old connection may mark the device offline, no offline live event, status online
 * throughout (the server settles a will after kaiser.lwt.takeover-grace-ms), and a real loss afterwards is still an offline.
 */
@Tag("e2e")
class SessionTakeoverE2E {

    @Test
    void should_not_mark_a_device_offline_when_it_reconnects_with_its_client_id_while_the_old_connection_lingers() throws Exception {
        FaultFigures figures = new FaultFigures("session-takeover");
        try (E2eStack stack = new E2eStack("e2etko", Map.of("kaiser.registration.auto-approve", "true")).start();
             TcpLink link = stack.link();
             LiveClient live = new LiveClient(stack.wsUrl() + "?types=esp_health")) {
            VirtualDevices old = stack.devices(link, "TKO", 3, "--heartbeat-s", "2", "--data-s", "2");
            VirtualDevices fresh = null;
            try {
                await().atMost(Duration.ofSeconds(30)).until(() ->
                        stack.count("SELECT count(*) FROM devices WHERE esp_id LIKE 'TKO%' AND status = 'online'") == 3);
                // the old connections go dark: no bytes either way, nobody closes anything
                link.blackhole();
                signal(old.pid(), "STOP");
                long darkAt = System.nanoTime();
                // the same devices (same client ids) come back on new connections, straight to the broker
                fresh = stack.devices("TKO", 3, "--heartbeat-s", "2", "--data-s", "2");
                VirtualDevices back = fresh;
                await().atMost(Duration.ofSeconds(30)).until(() -> back.stat("registered") == 3);
                long takeoverMs = (System.nanoTime() - darkAt) / 1_000_000;
                // the frozen device dies for good; its connection was taken over already, so it leaves no will
                signal(old.pid(), "KILL");
                old.kill();
                link.restore();
                String beat = "SELECT count(*) FROM heartbeat_logs WHERE esp_id LIKE 'TKO%'";
                long beats = stack.count(beat);
                // 15 s of normal life afterwards (several heartbeats each): online all the time
                await().during(Duration.ofSeconds(15)).atMost(Duration.ofSeconds(20)).until(() ->
                        stack.count("SELECT count(*) FROM devices WHERE esp_id LIKE 'TKO%' AND status = 'online'") == 3);
                assertThat(stack.count(beat)).as("heartbeats after the takeover").isGreaterThan(beats + 6);
                long wills = stack.count("SELECT count(*) FROM device_events WHERE esp_id LIKE 'TKO%' AND event_type = 'lwt_received'");
                Map<String, Object> offline = live.await(e -> "offline".equals(LiveClient.data(e).get("status")), Duration.ofSeconds(1));
                figures.put("devices", 3)
                        .put("takeover_to_registered_ms", takeoverMs)
                        .put("lwt_marked_offline", wills)
                        .put("offline_live_events", offline == null ? 0 : 1)
                        .write();
                assertThat(wills).as("LWTs that marked a device offline").isZero();
                assertThat(offline).as("offline live event").isNull();
                assertThat(stack.query("SELECT last_disconnect FROM devices WHERE esp_id LIKE 'TKO%'"))
                        .allSatisfy(r -> assertThat(r.get("last_disconnect")).isNull());
                assertThat(stack.count("SELECT count(*) FROM device_events WHERE esp_id LIKE 'TKO%' AND event_type = 'lwt_superseded'"))
                        .as("wills recognised as those of replaced connections").isEqualTo(3);

                // and a real loss is still an offline: the devices die (SIGKILL, the broker publishes their wills)
                fresh.kill();
                long killedAt = System.nanoTime();
                await().atMost(Duration.ofSeconds(20)).until(() ->
                        stack.count("SELECT count(*) FROM devices WHERE esp_id LIKE 'TKO%' AND status = 'offline'") == 3);
                figures.put("real_loss_to_offline_ms", (System.nanoTime() - killedAt) / 1_000_000).write();
            } finally {
                if (old.alive()) {
                    signal(old.pid(), "KILL");
                    old.kill();
                }
                if (fresh != null) {
                    fresh.close();
                }
            }
        }
    }

    static void signal(long pid, String signal) throws IOException, InterruptedException {
        assertThat(new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start().waitFor()).isZero();
    }
}
