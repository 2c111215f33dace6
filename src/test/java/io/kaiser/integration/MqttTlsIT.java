package io.kaiser.integration;

import java.time.Duration;
import java.util.Map;
import java.util.UUID;

import io.kaiser.mqtt.MqttTls;
import io.kaiser.support.Heartbeats;
import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.MqttTestClient;
import io.kaiser.support.TlsBroker;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * The server talks to the broker over TLS only (issue #7 item 4): a Mosquitto of the test's own with a TLS listener and
 * a CA made by openssl. With the right CA the server connects (health UP, a heartbeat is stored and ACKed over TLS);
 * with another CA it does not (health DEGRADED, mqtt DOWN).
 */
class MqttTlsIT {
    static TlsBroker broker;

    @BeforeAll
    static void startBroker() {
        broker = new TlsBroker().start();
    }

    @AfterAll
    static void stopBroker() {
        if (broker != null) {
            broker.close();
        }
    }

    @Test
    void should_connect_over_tls_store_and_ack_a_heartbeat() throws Exception {
        try (KaiserServer server = new KaiserServer("mqtttls", Map.of(
                "kaiser.mqtt.url", broker.url(),
                "kaiser.mqtt.tls.ca-file", broker.ca().toString())).start()) {
            await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
                Http.Response health = Http.get(server.baseUrl() + "/health");
                assertThat(health.status()).as(health.body() + "\n" + broker.log()).isEqualTo(200);
                assertThat(health.json()).containsEntry("status", "UP");
            });
            assertThat(((Map<?, ?>) Http.get(server.baseUrl() + "/health").json().get("mqtt")).get("broker").toString())
                    .startsWith("ssl://127.0.0.1:");

            MqttConnectionOptions o = new MqttConnectionOptions();
            o.setSocketFactory(MqttTls.socketFactory(broker.ca().toString(), null, null));
            try (MqttTestClient device = new MqttTestClient(broker.pahoUrl(), "dev-" + UUID.randomUUID().toString().substring(0, 8), o)) {
                device.subscribe("kaiser/" + server.kaiserId() + "/esp/+/system/heartbeat/ack", 0);
                device.publish(server.topic("ESP_TLS01", "system/heartbeat"), Heartbeats.original("ESP_TLS01"), 0);
                MqttTestClient.Received ack = Heartbeats.serverAck(device, server, "ESP_TLS01", Duration.ofSeconds(10));
                assertThat(ack).as("heartbeat ACK over TLS").isNotNull();
                assertThat(ack.payload()).contains("\"ack_type\":\"heartbeat\"");
            }
            await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
                    assertThat(Http.get(server.baseUrl() + "/esp/devices/ESP_TLS01").status()).isEqualTo(200));
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void should_not_connect_with_the_wrong_ca() throws Exception {
        try (KaiserServer server = new KaiserServer("mqtttlswrong", Map.of(
                "kaiser.mqtt.url", broker.url(),
                "kaiser.mqtt.tls.ca-file", broker.otherCa().toString())).start()) {
            await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").body().contains("\"status\""));
            // the connector keeps trying: it must stay down through several attempts
            await().during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(8)).until(() -> Http.get(server.baseUrl() + "/health").status() == 503);
            Http.Response health = Http.get(server.baseUrl() + "/health");
            assertThat(health.status()).isEqualTo(503);
            assertThat(health.json()).containsEntry("status", "DEGRADED");
            assertThat((Map<String, Object>) health.json().get("mqtt")).containsEntry("status", "DOWN");
            // the reason is visible where an operator looks: the health report's last_error
            assertThat(health.body()).contains("certification path");
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void should_present_the_client_certificate_to_a_broker_that_requires_one() throws Exception {
        try (KaiserServer server = new KaiserServer("mqttmtls", Map.of(
                "kaiser.mqtt.url", broker.mtlsUrl(),
                "kaiser.mqtt.tls.ca-file", broker.ca().toString(),
                "kaiser.mqtt.tls.cert-file", broker.clientCert().toString(),
                "kaiser.mqtt.tls.key-file", broker.clientKey().toString())).start()) {
            await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
                Http.Response health = Http.get(server.baseUrl() + "/health");
                assertThat(health.status()).as(health.body() + "\n" + broker.log()).isEqualTo(200);
            });
        }
        try (KaiserServer server = new KaiserServer("mqttmtlsnocert", Map.of(
                "kaiser.mqtt.url", broker.mtlsUrl(),
                "kaiser.mqtt.tls.ca-file", broker.ca().toString())).start()) {
            await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").body().contains("\"status\""));
            await().during(Duration.ofSeconds(3)).atMost(Duration.ofSeconds(8)).until(() -> Http.get(server.baseUrl() + "/health").status() == 503);
            Http.Response health = Http.get(server.baseUrl() + "/health");
            assertThat(health.status()).as("no client certificate: the broker refuses").isEqualTo(503);
            assertThat((Map<String, Object>) health.json().get("mqtt")).containsEntry("status", "DOWN");
        }
    }

    @Test
    void should_refuse_a_client_with_the_wrong_ca_and_map_mqtts_urls() {
        assertThat(MqttTls.normalizeUrl("mqtts://broker:8883")).isEqualTo("ssl://broker:8883");
        assertThat(MqttTls.normalizeUrl("tcp://broker:1883")).isEqualTo("tcp://broker:1883");
        assertThat(MqttTls.isTls("mqtts://b:8883")).isTrue();
        assertThat(MqttTls.isTls("tcp://b:1883")).isFalse();
        assertThat(MqttTls.socketFactory(broker.ca().toString(), broker.serverCert().toString(), broker.serverKey().toString()))
                .as("PKCS#8 client key and certificate load").isNotNull();
        assertThatThrownBy(() -> MqttTls.socketFactory(broker.ca().toString(), broker.serverCert().toString(), null))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> MqttTls.socketFactory(broker.ca().toString(), broker.serverCert().toString(), broker.ca().toString()))
                .isInstanceOf(IllegalArgumentException.class);
        MqttConnectionOptions o = new MqttConnectionOptions();
        o.setSocketFactory(MqttTls.socketFactory(broker.otherCa().toString(), null, null));
        assertThatThrownBy(() -> new MqttTestClient(broker.pahoUrl(), "wrong-" + UUID.randomUUID().toString().substring(0, 8), o).close())
                .isInstanceOf(IllegalStateException.class);
    }
}
