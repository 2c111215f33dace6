package io.kaiser.provisioning;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

/** The role a device gets: its own prefix, plus what the contract gives every device, and nothing else. */
class DeviceCredentialsTest {
    final DeviceCredentials credentials = new DeviceCredentials(null, "god", "tcp://127.0.0.1:1", "x", null, Duration.ofSeconds(1), false);

    @Test
    void should_allow_a_device_its_own_prefix_the_broadcast_and_the_server_status_only() {
        List<Map<String, Object>> acls = credentials.deviceAcls("ESP_1");
        assertThat(acls).allSatisfy(a -> assertThat(a).containsEntry("allow", true));
        assertThat(acls).filteredOn(a -> a.get("acltype").equals("publishClientSend"))
                .extracting(a -> a.get("topic")).containsExactly("kaiser/god/esp/ESP_1/#");
        assertThat(acls).filteredOn(a -> a.get("acltype").toString().startsWith("subscribe"))
                .extracting(a -> a.get("acltype") + " " + a.get("topic"))
                .containsExactlyInAnyOrder("subscribePattern kaiser/god/esp/ESP_1/#", "subscribeLiteral kaiser/broadcast/emergency",
                        "subscribeLiteral kaiser/god/server/status");
        assertThat(acls).extracting(a -> a.get("topic").toString()).noneMatch(t -> t.contains("+") || t.equals("#") || t.startsWith("$"));
        assertThat(DeviceCredentials.roleName("ESP_1")).isEqualTo("kaiser-device-ESP_1");
    }

    @Test
    void should_return_the_approval_unchanged_when_provisioning_on_approve_is_off() {
        Map<String, Object> approval = Map.of("device_id", "ESP_1", "status", "approved");
        assertThat(credentials.onApprove(approval)).isSameAs(approval);
    }
}
