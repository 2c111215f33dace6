package io.kaiser.provisioning;

import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import javax.sql.DataSource;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kaiser.api.ApiProblem;
import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttCallback;
import org.eclipse.paho.mqttv5.client.MqttClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.MqttDisconnectResponse;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.eclipse.paho.mqttv5.common.MqttSubscription;
import org.eclipse.paho.mqttv5.common.packet.MqttProperties;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Per-device MQTT credentials, kept by Mosquitto's dynamic security plugin ("dynsec") and managed over MQTT
 * ({@code $CONTROL/dynamic-security/v1}, answers on {@code .../response}).
 *
 * <p>Each device gets a dynsec client whose username and (required) client id are its esp_id, and a role of its own
 * ({@code kaiser-device-<esp_id>}) that allows exactly: publish and subscribe under
 * {@code kaiser/<kaiser_id>/esp/<esp_id>/#}, subscribe to {@code kaiser/broadcast/emergency} and
 * {@code kaiser/<kaiser_id>/server/status}. Everything else falls to the plugin's default (deny publish and
 * subscribe). Passwords are random, returned once and never stored by Kaiser; the database keeps only
 * created/rotated/revoked timestamps. Deleting a dynsec client makes the broker disconnect it at once.
 *
 * <p>The requests go over one dedicated connection with a stable client id ({@code kaiser.mqtt.client-id.provisioning}),
 * opened on first use, because the answers need a subscription of their own. A broker without the plugin (the
 * development broker) never answers: the caller gets 503.
 */
public class DeviceCredentials implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceCredentials.class);
    static final String CONTROL_TOPIC = "$CONTROL/dynamic-security/v1";
    static final String RESPONSE_TOPIC = CONTROL_TOPIC + "/response";
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final SecureRandom RANDOM = new SecureRandom();

    private final DataSource dataSource;
    private final String kaiserId;
    private final String brokerUrl;
    private final String clientId;
    private final MqttConnectionOptions options;
    private final Duration timeout;
    private final boolean onApprove;
    private final Map<String, CompletableFuture<List<Map<String, Object>>>> pending = new ConcurrentHashMap<>();
    private MqttClient client;

    public DeviceCredentials(DataSource dataSource, String kaiserId, String brokerUrl, String clientId, MqttConnectionOptions options,
                             Duration timeout, boolean onApprove) {
        this.dataSource = dataSource;
        this.kaiserId = kaiserId;
        this.brokerUrl = brokerUrl;
        this.clientId = clientId;
        this.options = options;
        this.timeout = timeout;
        this.onApprove = onApprove;
    }

    public static String roleName(String espId) {
        return "kaiser-device-" + espId;
    }

    /** The ACLs of a device's role (dynsec JSON). */
    List<Map<String, Object>> deviceAcls(String espId) {
        String own = "kaiser/" + kaiserId + "/esp/" + espId + "/#";
        List<Map<String, Object>> acls = new ArrayList<>();
        acls.add(acl("publishClientSend", own));
        acls.add(acl("publishClientReceive", own));
        acls.add(acl("subscribePattern", own));
        acls.add(acl("unsubscribePattern", own));
        for (String shared : List.of("kaiser/broadcast/emergency", "kaiser/" + kaiserId + "/server/status")) {
            acls.add(acl("subscribeLiteral", shared));
            acls.add(acl("publishClientReceive", shared));
            acls.add(acl("unsubscribeLiteral", shared));
        }
        return acls;
    }

    private static Map<String, Object> acl(String type, String topic) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("acltype", type);
        m.put("topic", topic);
        m.put("priority", 0);
        m.put("allow", true);
        return m;
    }

    /**
     * POST .../credentials[?register=true]: with register=true an unknown device is first added as approved (a device
     * cannot send the heartbeat that would register it before it has credentials for the production broker).
     */
    public synchronized Map<String, Object> createRequested(String espId, String by, String register) throws SQLException {
        if (register != null && !register.isBlank()) {
            if (!register.equals("true") && !register.equals("false")) {
                throw ApiProblem.badRequest("register must be true or false");
            }
            if (register.equals("true")) {
                exec("""
                        INSERT INTO devices (esp_id, kaiser_id, status, approved_at, approved_by) VALUES (?, ?, 'approved', now(), ?)
                        ON CONFLICT (esp_id) DO NOTHING""", espId, kaiserId, by);
            }
        }
        return create(espId, by);
    }

    /** POST .../credentials: new client and role on the broker; the password is in the answer and nowhere else. */
    public synchronized Map<String, Object> create(String espId, String by) throws SQLException {
        requireDevice(espId);
        Map<String, Object> existing = row(espId);
        if (existing != null && existing.get("revoked_at") == null) {
            throw ApiProblem.conflict("device " + espId + " already has MQTT credentials: rotate them "
                    + "(POST .../credentials/rotate) or revoke them first");
        }
        String password = newPassword();
        Map<String, Object> role = command("createRole");
        role.put("rolename", roleName(espId));
        role.put("textname", "Kaiser device " + espId);
        role.put("acls", deviceAcls(espId));
        Map<String, Object> client = command("createClient");
        client.put("username", espId);
        client.put("password", password);
        // the firmware's MQTT client id is its esp_id: binding it stops one device from taking over another's session
        client.put("clientid", espId);
        client.put("textname", "Kaiser device " + espId + " (kaiser " + kaiserId + ")");
        client.put("roles", List.of(Map.of("rolename", roleName(espId), "priority", 0)));
        List<Map<String, Object>> answers = send(List.of(role, client));
        String roleError = error(answers, 0);
        if (roleError != null && !roleError.toLowerCase().contains("already exists")) {
            throw brokerRefused("createRole", roleError);
        }
        String clientError = error(answers, 1);
        if (clientError != null) {
            if (clientError.toLowerCase().contains("already exists")) {
                throw ApiProblem.conflict("the broker already has a client named " + espId
                        + ": rotate its credentials or revoke them first");
            }
            throw brokerRefused("createClient", clientError);
        }
        exec("""
                INSERT INTO device_credentials (esp_id, username, created_at, created_by) VALUES (?, ?, now(), ?)
                ON CONFLICT (esp_id) DO UPDATE SET username = excluded.username, created_at = now(), created_by = excluded.created_by,
                  rotated_at = NULL, rotation_count = 0, revoked_at = NULL""", espId, espId, by);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("esp_id", espId);
        out.put("username", espId);
        out.put("password", password);
        out.put("created_at", System.currentTimeMillis() / 1000);
        out.put("note", "the password is shown only this once; Kaiser does not store it");
        return out;
    }

    /** POST .../credentials/rotate: a new password; the old one no longer authenticates. */
    public synchronized Map<String, Object> rotate(String espId) throws SQLException {
        requireActive(espId);
        String password = newPassword();
        Map<String, Object> set = command("setClientPassword");
        set.put("username", espId);
        set.put("password", password);
        String err = error(send(List.of(set)), 0);
        if (err != null) {
            throw brokerRefused("setClientPassword", err);
        }
        exec("UPDATE device_credentials SET rotated_at = now(), rotation_count = rotation_count + 1 WHERE esp_id = ?", espId);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("esp_id", espId);
        out.put("username", espId);
        out.put("password", password);
        out.put("rotated_at", System.currentTimeMillis() / 1000);
        out.put("note", "the password is shown only this once; Kaiser does not store it");
        return out;
    }

    /** DELETE .../credentials: removes the device's client and role; the broker disconnects the device at once. */
    public synchronized Map<String, Object> revoke(String espId) throws SQLException {
        requireActive(espId);
        Map<String, Object> client = command("deleteClient");
        client.put("username", espId);
        Map<String, Object> role = command("deleteRole");
        role.put("rolename", roleName(espId));
        List<Map<String, Object>> answers = send(List.of(client, role));
        for (int i = 0; i < 2; i++) {
            String err = error(answers, i);
            if (err != null && !err.toLowerCase().contains("not found")) {
                throw brokerRefused(i == 0 ? "deleteClient" : "deleteRole", err);
            }
        }
        exec("UPDATE device_credentials SET revoked_at = now() WHERE esp_id = ?", espId);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("esp_id", espId);
        out.put("revoked_at", System.currentTimeMillis() / 1000);
        return out;
    }

    /** GET .../credentials: the metadata (never a password). */
    public Map<String, Object> status(String espId) throws SQLException {
        requireDevice(espId);
        Map<String, Object> r = row(espId);
        if (r == null) {
            throw ApiProblem.notFound("device " + espId + " has no MQTT credentials");
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("esp_id", espId);
        out.put("username", r.get("username"));
        out.put("status", r.get("revoked_at") == null ? "active" : "revoked");
        for (String k : List.of("created_at", "created_by", "rotated_at", "rotation_count", "revoked_at")) {
            Object v = r.get(k);
            out.put(k, v instanceof Timestamp t ? t.getTime() / 1000 : v);
        }
        return out;
    }

    /**
     * After an approval: with {@code kaiser.provisioning.on-approve=true}, creates the device's credentials and adds
     * them to the approval's answer ({@code mqtt_credentials}). A failure does not undo the approval; it is reported
     * in {@code mqtt_credentials_error}.
     */
    public Map<String, Object> onApprove(Map<String, Object> approval) {
        if (!onApprove || approval == null) {
            return approval;
        }
        Map<String, Object> out = new LinkedHashMap<>(approval);
        String espId = String.valueOf(approval.get("device_id"));
        try {
            out.put("mqtt_credentials", create(espId, "approval"));
        } catch (ApiProblem p) {
            out.put("mqtt_credentials_error", p.getMessage());
        } catch (Exception e) {
            LOG.warn("Credentials for approved device {} not created: {}", espId, e.toString());
            out.put("mqtt_credentials_error", e.getMessage());
        }
        return out;
    }

    // --- dynsec over MQTT ----------------------------------------------------------------------------------------

    private static Map<String, Object> command(String name) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("command", name);
        return m;
    }

    private static String error(List<Map<String, Object>> answers, int i) {
        if (i >= answers.size()) {
            return "no answer for this command";
        }
        Object e = answers.get(i).get("error");
        return e == null ? null : e.toString();
    }

    private static ApiProblem brokerRefused(String command, String error) {
        return new ApiProblem(502, "Broker refused", "the broker's dynamic security plugin refused " + command + ": " + error);
    }

    private static ApiProblem unavailable(String detail) {
        return new ApiProblem(503, "Service unavailable", detail);
    }

    /** Sends commands in one request and returns their answers in order. */
    List<Map<String, Object>> send(List<Map<String, Object>> commands) {
        String correlation = UUID.randomUUID().toString();
        List<Map<String, Object>> tagged = new ArrayList<>();
        for (int i = 0; i < commands.size(); i++) {
            Map<String, Object> c = new LinkedHashMap<>(commands.get(i));
            c.put("correlationData", correlation + ":" + i);
            tagged.add(c);
        }
        CompletableFuture<List<Map<String, Object>>> answer = new CompletableFuture<>();
        pending.put(correlation, answer);
        try {
            MqttClient c = connected();
            MqttMessage m = new MqttMessage(JSON.writeValueAsBytes(Map.of("commands", tagged)));
            m.setQos(1);
            c.publish(CONTROL_TOPIC, m);
            List<Map<String, Object>> raw = answer.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            List<Map<String, Object>> ordered = new ArrayList<>();
            for (int i = 0; i < commands.size(); i++) {
                String key = correlation + ":" + i;
                ordered.add(raw.stream().filter(r -> key.equals(r.get("correlationData"))).findFirst().orElse(Map.of()));
            }
            return ordered;
        } catch (TimeoutException e) {
            throw unavailable("the MQTT broker did not answer the dynamic security request within " + timeout.toMillis()
                    + " ms: device credentials need Mosquitto's dynamic security plugin (mosquitto/mosquitto.prod.conf) and a "
                    + "kaiser.mqtt.username with its admin role; the development broker has neither");
        } catch (MqttException e) {
            throw unavailable("cannot reach the MQTT broker for device credentials: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw unavailable("interrupted");
        } catch (ExecutionException | java.io.IOException e) {
            throw unavailable("dynamic security request failed: " + e.getMessage());
        } finally {
            pending.remove(correlation);
        }
    }

    private synchronized MqttClient connected() throws MqttException {
        if (client == null) {
            client = new MqttClient(brokerUrl, clientId, new MemoryPersistence());
            client.setCallback(new Responses());
            client.setTimeToWait(timeout.toMillis());
        }
        if (!client.isConnected()) {
            client.connect(options);
            client.subscribe(new MqttSubscription[] {new MqttSubscription(RESPONSE_TOPIC, 1)}).waitForCompletion(timeout.toMillis());
        }
        return client;
    }

    private final class Responses implements MqttCallback {
        @Override
        public void messageArrived(String topic, MqttMessage message) {
            try {
                Map<String, Object> body = JSON.readValue(message.getPayload(), new TypeReference<Map<String, Object>>() { });
                Object responses = body.get("responses");
                if (!(responses instanceof List<?> list)) {
                    return;
                }
                @SuppressWarnings("unchecked")
                List<Map<String, Object>> answers = (List<Map<String, Object>>) list;
                for (Map<String, Object> a : answers) {
                    Object cd = a.get("correlationData");
                    if (cd != null && cd.toString().contains(":")) {
                        CompletableFuture<List<Map<String, Object>>> f = pending.get(cd.toString().substring(0, cd.toString().lastIndexOf(':')));
                        if (f != null) {
                            f.complete(answers);
                            return;
                        }
                    }
                }
            } catch (Exception e) {
                LOG.warn("Unreadable dynamic security response: {}", new String(message.getPayload(), StandardCharsets.UTF_8));
            }
        }

        @Override
        public void disconnected(MqttDisconnectResponse r) {
            LOG.info("Provisioning connection closed: {}", r.getReasonString());
        }

        @Override
        public void mqttErrorOccurred(MqttException e) {
        }

        @Override
        public void deliveryComplete(IMqttToken token) {
        }

        @Override
        public void connectComplete(boolean reconnect, String serverURI) {
            if (reconnect) {
                try {
                    client.subscribe(new MqttSubscription[] {new MqttSubscription(RESPONSE_TOPIC, 1)});
                } catch (MqttException e) {
                    LOG.warn("Cannot resubscribe to {}: {}", RESPONSE_TOPIC, e.getMessage());
                }
            }
        }

        @Override
        public void authPacketArrived(int reasonCode, MqttProperties properties) {
        }
    }

    // --- database ------------------------------------------------------------------------------------------------

    private void requireDevice(String espId) throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT 1 FROM devices WHERE esp_id = ?")) {
            ps.setString(1, espId);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    throw ApiProblem.notFound("unknown device " + espId);
                }
            }
        }
    }

    private void requireActive(String espId) throws SQLException {
        requireDevice(espId);
        Map<String, Object> r = row(espId);
        if (r == null || r.get("revoked_at") != null) {
            throw ApiProblem.notFound("device " + espId + " has no active MQTT credentials: create them with POST .../credentials");
        }
    }

    private Map<String, Object> row(String espId) throws SQLException {
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT * FROM device_credentials WHERE esp_id = ?")) {
            ps.setString(1, espId);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return null;
                }
                Map<String, Object> m = new LinkedHashMap<>();
                for (int i = 1; i <= rs.getMetaData().getColumnCount(); i++) {
                    m.put(rs.getMetaData().getColumnName(i), rs.getObject(i));
                }
                return m;
            }
        }
    }

    private void exec(String sql, Object... args) throws SQLException {
        try (Connection c = dataSource.getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < args.length; i++) {
                ps.setObject(i + 1, args[i]);
            }
            ps.executeUpdate();
        }
    }

    private static String newPassword() {
        byte[] b = new byte[24];
        RANDOM.nextBytes(b);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    @Override
    public synchronized void close() {
        if (client != null) {
            try {
                if (client.isConnected()) {
                    client.disconnect(2000);
                }
                client.close();
            } catch (MqttException e) {
                LOG.debug("Provisioning connection close: {}", e.getMessage());
            }
            client = null;
        }
    }
}
