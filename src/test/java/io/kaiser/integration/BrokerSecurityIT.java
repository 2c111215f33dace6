package io.kaiser.integration;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;

import io.kaiser.support.FreePorts;
import io.kaiser.support.Heartbeats;
import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.LiveClient;
import io.kaiser.support.MqttTestClient;
import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttSubscription;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

/**
 * The production broker configuration (mosquitto/mosquitto.prod.conf) as shipped, with only its ports and paths
 * changed, certificates from mosquitto/gen-dev-ca.sh and the server's user set up as docs/production.md says.
 * Devices connect over TLS with the development CA; the Kaiser server uses a loopback listener with credentials.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class BrokerSecurityIT {
    static final String ADMIN = "kaiser-admin";
    static final String ADMIN_PASSWORD = "admin-" + UUID.randomUUID();
    static Path dir;
    static Process broker;
    static int tlsPort;
    static int wsPort;
    static int plainPort;
    static SSLSocketFactory tls;
    static KaiserServer server;
    static MqttTestClient privileged;

    @BeforeAll
    static void start() throws Exception {
        dir = Files.createTempDirectory("kaiser-prodbroker-");
        dir.toFile().setReadable(true, false);
        dir.toFile().setWritable(true, false);
        dir.toFile().setExecutable(true, false);
        run(List.of("sh", "mosquitto/gen-dev-ca.sh", dir.resolve("certs").toString()));
        run(List.of("mosquitto_ctrl", "dynsec", "init", dir.resolve("dynamic-security.json").toString(), ADMIN, ADMIN_PASSWORD));
        dir.resolve("dynamic-security.json").toFile().setReadable(true, false);
        dir.resolve("dynamic-security.json").toFile().setWritable(true, false);

        tlsPort = FreePorts.next();
        wsPort = FreePorts.next();
        plainPort = FreePorts.next();
        String conf = Files.readString(Path.of("mosquitto/mosquitto.prod.conf"));
        conf = replaceOnce(conf, "\nlistener 8883\n", "\nlistener " + tlsPort + " 127.0.0.1\n");
        conf = replaceOnce(conf, "\nlistener 8884\n", "\nlistener " + wsPort + " 127.0.0.1\n");
        conf = replaceOnce(conf, "\n#listener 1883 127.0.0.1\n#protocol mqtt\n", "\nlistener " + plainPort + " 127.0.0.1\nprotocol mqtt\n");
        conf = conf.replace("/etc/mosquitto/certs/", dir.resolve("certs") + "/").replace("/var/lib/mosquitto/", dir + "/");
        assertThat(conf).contains("allow_anonymous false").doesNotContain("allow_anonymous true");
        Path confFile = dir.resolve("mosquitto.conf");
        Files.writeString(confFile, conf);
        confFile.toFile().setReadable(true, false);
        broker = new ProcessBuilder("mosquitto", "-c", confFile.toString()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("mosquitto.log").toFile()).start();
        await().atMost(Duration.ofSeconds(10)).until(() -> listening(tlsPort) && listening(wsPort) && listening(plainPort));

        // the server's own role, exactly as docs/production.md sets it up (over TLS with the CA)
        String ca = dir.resolve("certs/ca.crt").toString();
        for (List<String> cmd : List.of(
                List.of("createRole", "kaiser-server"),
                List.of("addRoleACL", "kaiser-server", "publishClientSend", "kaiser/#", "allow"),
                List.of("addRoleACL", "kaiser-server", "publishClientReceive", "kaiser/#", "allow"),
                List.of("addRoleACL", "kaiser-server", "subscribePattern", "kaiser/#", "allow"),
                List.of("addClientRole", ADMIN, "kaiser-server"))) {
            List<String> full = new ArrayList<>(List.of("mosquitto_ctrl", "--cafile", ca, "-h", "localhost", "-p", Integer.toString(tlsPort),
                    "-u", ADMIN, "-P", ADMIN_PASSWORD, "dynsec"));
            full.addAll(cmd);
            run(full);
        }

        tls = sslFactory(dir.resolve("certs/ca.crt"));
        server = new KaiserServer("brokersec", Map.of("kaiser.mqtt.url", "tcp://127.0.0.1:" + plainPort,
                "kaiser.mqtt.username", ADMIN, "kaiser.mqtt.password", ADMIN_PASSWORD, "kaiser.provisioning.on-approve", "true")).start();
        await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(server.baseUrl() + "/health").status() == 200);
        privileged = new MqttTestClient("ssl://localhost:" + tlsPort, "privileged-" + UUID.randomUUID().toString().substring(0, 8),
                options(ADMIN, ADMIN_PASSWORD));
        privileged.subscribe("kaiser/" + server.kaiserId() + "/esp/#", 1);
        privileged.subscribe("kaiser/broadcast/#", 1);
    }

    @AfterAll
    static void stop() throws Exception {
        if (privileged != null) {
            privileged.close();
        }
        if (server != null) {
            server.stop();
        }
        if (broker != null) {
            broker.destroy();
            broker.waitFor(10, TimeUnit.SECONDS);
        }
        if (dir != null) {
            try (var files = Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    // --- tests -----------------------------------------------------------------------------------------------------

    @Test
    void should_refuse_anonymous_clients_on_every_listener() {
        assertThatThrownBy(() -> connect("ssl://localhost:" + tlsPort, new MqttConnectionOptions()))
                .isInstanceOf(MqttException.class);
        assertThatThrownBy(() -> connect("tcp://127.0.0.1:" + plainPort, new MqttConnectionOptions()))
                .isInstanceOf(MqttException.class);
        MqttConnectionOptions wrong = options(ADMIN, "not-the-password");
        assertThatThrownBy(() -> connect("ssl://localhost:" + tlsPort, wrong)).isInstanceOf(MqttException.class);
    }

    @Test
    void should_answer_404_for_an_unknown_device_and_409_when_credentials_exist() {
        Http.Response unknown = Http.post(server.baseUrl() + "/esp/devices/ESP_NOPE/credentials", null);
        assertThat(unknown.status()).isEqualTo(404);
        assertThat(unknown.contentType()).startsWith("application/problem+json");

        String esp = register("ESP_DUP");
        assertThat(Http.post(server.baseUrl() + "/esp/devices/" + esp + "/credentials", null).status()).isEqualTo(201);
        Http.Response again = Http.post(server.baseUrl() + "/esp/devices/" + esp + "/credentials", null);
        assertThat(again.status()).isEqualTo(409);
        assertThat(again.body()).contains("rotate");
        // only metadata is kept
        assertThat(server.query("SELECT * FROM device_credentials WHERE esp_id = '" + esp + "'")).hasSize(1);
        Http.Response meta = Http.get(server.baseUrl() + "/esp/devices/" + esp + "/credentials");
        assertThat(meta.status()).isEqualTo(200);
        assertThat(meta.json()).containsEntry("status", "active").doesNotContainKey("password");
    }

    @Test
    void should_confine_a_device_to_its_own_topics() throws Exception {
        String a = register("ESP_A");
        String b = "ESP_B" + suffix();
        Map<String, Object> creds = credentials(a);
        assertThat(creds).containsEntry("username", a).containsKey("password");

        MqttClient device = connect("ssl://localhost:" + tlsPort, options(a, (String) creds.get("password")));
        try {
            // may subscribe its own prefix and what the contract gives every device, not kaiser/#
            assertThat(grant(device, server.topic(a, "#"))).isLessThan(0x80);
            assertThat(grant(device, "kaiser/broadcast/emergency")).isLessThan(0x80);
            assertThat(grant(device, "kaiser/" + server.kaiserId() + "/server/status")).isLessThan(0x80);
            assertThat(grant(device, "kaiser/#")).isGreaterThanOrEqualTo(0x80);
            assertThat(grant(device, server.topic(b, "#"))).isGreaterThanOrEqualTo(0x80);

            privileged.clear();
            // forbidden: another device's topics, the broadcast, someone else's kaiser
            tryPublish(device, server.topic(b, "system/heartbeat"), Heartbeats.original(b), 0);
            tryPublish(device, server.topic(b, "actuator/5/status"), "{\"esp_id\":\"" + b + "\"}", 1);
            tryPublish(device, "kaiser/broadcast/emergency", "{\"command\":\"stop_all\"}", 1);
            // allowed: its own heartbeat
            device.publish(server.topic(a, "system/heartbeat"), Heartbeats.original(a).getBytes(StandardCharsets.UTF_8), 0, false);

            MqttTestClient.Received own = privileged.next(server.topic(a, "system/heartbeat"), Duration.ofSeconds(5));
            assertThat(own).as("the device's own heartbeat reaches a privileged subscriber").isNotNull();
            List<String> seen = new ArrayList<>();
            for (MqttTestClient.Received r; (r = privileged.next(Duration.ofMillis(1500))) != null; ) {
                seen.add(r.topic());
            }
            assertThat(seen).noneMatch(t -> t.contains("/esp/" + b + "/")).doesNotContain("kaiser/broadcast/emergency");
            assertThat(device.isConnected()).isTrue();
        } finally {
            close(device);
        }
    }

    @Test
    void should_disconnect_a_revoked_device_and_refuse_it_afterwards() throws Exception {
        String esp = register("ESP_REV");
        String password = (String) credentials(esp).get("password");
        MqttClient device = connect("ssl://localhost:" + tlsPort, options(esp, password));
        try {
            assertThat(device.isConnected()).isTrue();
            assertThat(delete("/esp/devices/" + esp + "/credentials")).isEqualTo(204);
            await().atMost(Duration.ofSeconds(5)).until(() -> !device.isConnected());
        } finally {
            close(device);
        }
        assertThatThrownBy(() -> connect("ssl://localhost:" + tlsPort, options(esp, password))).isInstanceOf(MqttException.class);
        assertThat(server.query("SELECT revoked_at FROM device_credentials WHERE esp_id = '" + esp + "'").get(0).get("revoked_at")).isNotNull();
        // revoked twice: nothing to revoke
        assertThat(delete("/esp/devices/" + esp + "/credentials")).isEqualTo(404);
        // and it can be provisioned again
        String fresh = (String) credentials(esp).get("password");
        close(connect("ssl://localhost:" + tlsPort, options(esp, fresh)));
    }

    @Test
    void should_let_the_server_user_subscribe_in_a_shared_group_for_several_instances() throws Exception {
        // kaiser.mqtt.shared-subscription-group: the server's ingest subscribes $share/<group>/kaiser/...
        try (MqttTestClient instance = new MqttTestClient("ssl://localhost:" + tlsPort, "instance-" + suffix(), options(ADMIN, ADMIN_PASSWORD))) {
            instance.subscribe("$share/g1/kaiser/" + server.kaiserId() + "/esp/+/system/heartbeat", 1);
            String esp = "ESP_SH" + suffix();
            privileged.publish(server.topic(esp, "system/heartbeat"), Heartbeats.original(esp), 1);
            assertThat(instance.next(server.topic(esp, "system/heartbeat"), Duration.ofSeconds(5))).isNotNull();
        }
    }

    @Test
    void should_bind_a_device_to_its_own_client_id() throws Exception {
        String a = register("ESP_CA");
        String b = register("ESP_CB");
        String pa = (String) credentials(a).get("password");
        String pb = (String) credentials(b).get("password");
        MqttClient deviceB = connect("ssl://localhost:" + tlsPort, options(b, pb));
        try {
            // A may not take over B's session by connecting with B's client id
            assertThatThrownBy(() -> connect("ssl://localhost:" + tlsPort, options(a, pa), b)).isInstanceOf(MqttException.class);
            org.awaitility.Awaitility.await().during(Duration.ofMillis(500)).atMost(Duration.ofSeconds(3)).until(deviceB::isConnected);
        } finally {
            close(deviceB);
        }
    }

    @Test
    void should_invalidate_the_old_password_on_rotation() throws Exception {
        String esp = register("ESP_ROT");
        String old = (String) credentials(esp).get("password");
        MqttClient session = connect("ssl://localhost:" + tlsPort, options(esp, old));

        Http.Response rotated = Http.post(server.baseUrl() + "/esp/devices/" + esp + "/credentials/rotate", null);
        assertThat(rotated.status()).as(rotated.body()).isEqualTo(200);
        // the broker ends the session that authenticated with the old password
        await().atMost(Duration.ofSeconds(5)).until(() -> !session.isConnected());
        close(session);
        String fresh = (String) rotated.json().get("password");
        assertThat(fresh).isNotEqualTo(old);

        assertThatThrownBy(() -> connect("ssl://localhost:" + tlsPort, options(esp, old))).isInstanceOf(MqttException.class);
        close(connect("ssl://localhost:" + tlsPort, options(esp, fresh)));
        assertThat(Http.post(server.baseUrl() + "/esp/devices/ESP_NOPE/credentials/rotate", null).status()).isEqualTo(404);
    }

    @Test
    @SuppressWarnings("unchecked")
    void should_create_credentials_on_approval_and_accept_them_over_websockets_with_tls() throws Exception {
        String esp = register("ESP_APR");
        Http.Response approved;
        Map<String, Object> creds;
        try (LiveClient live = new LiveClient(server.wsUrl())) {
            approved = Http.post(server.baseUrl() + "/esp/devices/" + esp + "/approve", "{}");
            assertThat(approved.status()).as(approved.body()).isEqualTo(200);
            creds = (Map<String, Object>) approved.json().get("mqtt_credentials");
            assertThat(creds).as(approved.body()).containsEntry("username", esp).containsKey("password");
            // the live event of the approval never carries the password
            Map<String, Object> event = live.await(e -> "device_approved".equals(e.get("type")) && e.toString().contains(esp), Duration.ofSeconds(5));
            assertThat(event).isNotNull();
            assertThat(event.toString()).doesNotContain((String) creds.get("password")).doesNotContain("mqtt_credentials");
        }
        MqttClient ws = connect("wss://localhost:" + wsPort, options(esp, (String) creds.get("password")));
        try {
            assertThat(grant(ws, server.topic(esp, "system/heartbeat/ack"))).isLessThan(0x80);
            assertThat(grant(ws, "kaiser/#")).isGreaterThanOrEqualTo(0x80);
        } finally {
            close(ws);
        }
        assertThatThrownBy(() -> connect("wss://localhost:" + wsPort, new MqttConnectionOptions())).isInstanceOf(MqttException.class);
        // credentials exist now: a second create is a conflict
        assertThat(Http.post(server.baseUrl() + "/esp/devices/" + esp + "/credentials", null).status()).isEqualTo(409);
    }

    @Test
    void should_pre_register_an_unknown_device_when_asked() throws Exception {
        String esp = "ESP_NEW" + suffix();
        assertThat(Http.post(server.baseUrl() + "/esp/devices/" + esp + "/credentials", null).status()).isEqualTo(404);
        assertThat(Http.post(server.baseUrl() + "/esp/devices/" + esp + "/credentials?register=maybe", null).status()).isEqualTo(400);
        Http.Response r = Http.post(server.baseUrl() + "/esp/devices/" + esp + "/credentials?register=true", null);
        assertThat(r.status()).as(r.body()).isEqualTo(201);
        assertThat(server.query("SELECT status FROM devices WHERE esp_id = '" + esp + "'").get(0)).containsEntry("status", "approved");
        // its first heartbeat, sent with its own credentials, is answered online
        MqttTestClient device = new MqttTestClient("ssl://localhost:" + tlsPort, esp, options(esp, (String) r.json().get("password")));
        try {
            device.subscribe(server.topic(esp, "system/heartbeat/ack"), 0);
            device.publish(server.topic(esp, "system/heartbeat"), Heartbeats.original(esp), 0);
            MqttTestClient.Received ack = Heartbeats.serverAck(device, server, esp, Duration.ofSeconds(10));
            assertThat(ack).isNotNull();
            assertThat(ack.payload()).contains("\"status\":\"online\"");
        } finally {
            device.close();
        }
    }

    // last (unannotated tests run before): stopping a second Camel Main in this JVM also stops the first server
    @Test
    @Order(Integer.MAX_VALUE)
    void should_answer_503_when_the_broker_has_no_dynamic_security() {
        // the machine's development broker: anonymous, no plugin, nobody answers $CONTROL requests
        try (KaiserServer dev = new KaiserServer("brokerdev", Map.of("kaiser.provisioning.timeout-ms", "1500")).start();
             MqttTestClient anon = new MqttTestClient(dev.mqttUrl())) {
            await().atMost(Duration.ofSeconds(20)).until(() -> Http.get(dev.baseUrl() + "/health").status() == 200);
            String esp = "ESP_DEV" + suffix();
            await().atMost(Duration.ofSeconds(15)).until(() -> {
                anon.publish(dev.topic(esp, "system/heartbeat"), Heartbeats.original(esp), 0);
                return dev.count("SELECT count(*) FROM devices WHERE esp_id = '" + esp + "'") == 1;
            });
            Http.Response r = Http.post(dev.baseUrl() + "/esp/devices/" + esp + "/credentials", null);
            assertThat(r.status()).isEqualTo(503);
            assertThat(r.contentType()).startsWith("application/problem+json");
            assertThat(r.body()).contains("dynamic security");
            assertThat(dev.count("SELECT count(*) FROM device_credentials")).isZero();
        }
    }

    // --- helpers ---------------------------------------------------------------------------------------------------

    /** A device known to the server (pending approval), registered by a heartbeat the privileged client relays. */
    static String register(String prefix) {
        String esp = prefix + suffix();
        await().atMost(Duration.ofSeconds(15)).until(() -> {
            privileged.publish(server.topic(esp, "system/heartbeat"), Heartbeats.original(esp), 0);
            return server.count("SELECT count(*) FROM devices WHERE esp_id = '" + esp + "'") == 1;
        });
        return esp;
    }

    static Map<String, Object> credentials(String esp) {
        Http.Response r = Http.post(server.baseUrl() + "/esp/devices/" + esp + "/credentials", null);
        assertThat(r.status()).as(r.body()).isEqualTo(201);
        return r.json();
    }

    static int delete(String path) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(server.baseUrl() + path)).DELETE()
                .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
        return r.statusCode();
    }

    static String suffix() {
        return UUID.randomUUID().toString().substring(0, 6);
    }

    static MqttConnectionOptions options(String user, String password) {
        MqttConnectionOptions o = new MqttConnectionOptions();
        o.setUserName(user);
        o.setPassword(password.getBytes(StandardCharsets.UTF_8));
        o.setConnectionTimeout(5);
        o.setAutomaticReconnect(false);
        o.setSocketFactory(tls);
        return o;
    }

    static MqttClient connect(String url, MqttConnectionOptions o) throws MqttException {
        if ((url.startsWith("ssl:") || url.startsWith("wss:")) && o.getSocketFactory() == null) {
            o.setSocketFactory(tls);
        }
        // a device connects with its esp_id (= username) as client id, as the firmware does
        String clientId = o.getUserName() == null || o.getUserName().equals(ADMIN) ? "other-" + suffix() : o.getUserName();
        return connect(url, o, clientId);
    }

    static MqttClient connect(String url, MqttConnectionOptions o, String clientId) throws MqttException {
        if ((url.startsWith("ssl:") || url.startsWith("wss:")) && o.getSocketFactory() == null) {
            o.setSocketFactory(tls);
        }
        MqttClient c = new MqttClient(url, clientId, new MemoryPersistence());
        try {
            c.connect(o);
        } catch (MqttException e) {
            c.close(true);
            throw e;
        }
        return c;
    }

    static void close(MqttClient c) {
        try {
            if (c.isConnected()) {
                c.disconnect();
            }
            c.close(true);
        } catch (MqttException ignored) {
            // closing
        }
    }

    /** The SUBACK reason code for one filter (0x80 and above: refused). */
    static int grant(MqttClient c, String filter) {
        try {
            IMqttToken t = c.subscribe(new MqttSubscription[] {new MqttSubscription(filter, 1)});
            t.waitForCompletion(5000);
            return t.getReasonCodes()[0];
        } catch (MqttException e) {
            // Paho may turn a refused SUBACK into an exception; a lost connection is no refusal
            assertThat(c.isConnected()).as("still connected after subscribing " + filter).isTrue();
            return 0x87;
        }
    }

    /** A publish the broker may refuse (MQTT 5 PUBACK with an error reason) or silently drop. */
    static void tryPublish(MqttClient c, String topic, String payload, int qos) {
        try {
            c.publish(topic, payload.getBytes(StandardCharsets.UTF_8), qos, false);
        } catch (MqttException e) {
            // refused: what we want
        }
    }

    static SSLSocketFactory sslFactory(Path caFile) throws Exception {
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        ks.load(null, null);
        try (InputStream in = Files.newInputStream(caFile)) {
            ks.setCertificateEntry("kaiser-dev-ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx.getSocketFactory();
    }

    static String replaceOnce(String text, String what, String with) {
        assertThat(text).as("mosquitto.prod.conf contains " + what.trim()).contains(what);
        return text.replace(what, with);
    }

    static void run(List<String> command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).as(String.join(" ", command) + "\n" + out).isZero();
    }

    static boolean listening(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 300);
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
