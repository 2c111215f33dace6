package io.kaiser.support;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

import com.fasterxml.jackson.databind.ObjectMapper;
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

/**
 * Many devices of one server on ONE MQTT connection: announces them (heartbeat and one actuator each), answers
 * every actuator command on {@code actuator/{gpio}/response} with success and the correlation_id, and records
 * what arrived (commands per device, broadcasts, per-device emergency messages).
 */
public final class ScriptedFleet implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final KaiserServer server;
    private final MqttClient client;
    /** Answers are published off the callback thread, in arrival order. */
    private final ExecutorService answerer = Executors.newSingleThreadExecutor();
    private final Map<String, Queue<Map<String, Object>>> commands = new ConcurrentHashMap<>();
    private final List<Map<String, Object>> broadcasts = new CopyOnWriteArrayList<>();
    private final List<Map<String, Object>> emergencyMessages = new CopyOnWriteArrayList<>();
    private final AtomicLong lastAnswerNanos = new AtomicLong();
    private volatile boolean answering = true;

    public ScriptedFleet(KaiserServer server) {
        this.server = server;
        try {
            client = new MqttClient(server.mqttUrl(), "fleet-" + server.kaiserId(), new MemoryPersistence());
            client.setCallback(new MqttCallback() {
                public void disconnected(MqttDisconnectResponse r) { }
                public void mqttErrorOccurred(MqttException e) { }
                public void messageArrived(String topic, MqttMessage m) throws Exception {
                    onMessage(topic, m);
                }
                public void deliveryComplete(IMqttToken t) { }
                public void connectComplete(boolean reconnect, String uri) { }
                public void authPacketArrived(int code, MqttProperties p) { }
            });
            MqttConnectionOptions o = new MqttConnectionOptions();
            o.setAutomaticReconnect(true);
            o.setReceiveMaximum(1000);
            client.connect(o);
            String base = "kaiser/" + server.kaiserId() + "/esp/+/actuator/";
            client.subscribe(new MqttSubscription[] {
                new MqttSubscription(base + "+/command", 2),
                new MqttSubscription(base + "emergency", 1),
                new MqttSubscription("kaiser/broadcast/emergency", 2)}).waitForCompletion(5000);
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Registers each device (heartbeat) and reports one actuator on gpio. */
    public void announce(List<String> espIds, int gpio) {
        for (String esp : espIds) {
            publish(server.topic(esp, "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}", 0);
            publish(server.topic(esp, "actuator/" + gpio + "/status"), "{\"ts\":1735818000,\"esp_id\":\"" + esp + "\",\"gpio\":" + gpio
                    + ",\"type\":\"pump\",\"state\":true,\"pwm\":0}", 1);
        }
    }

    public ScriptedFleet answering(boolean on) {
        this.answering = on;
        return this;
    }

    @SuppressWarnings("unchecked")
    private void onMessage(String topic, MqttMessage m) throws Exception {
        if (m.getPayload().length == 0) {
            return; // the server wipes a stale retained broadcast when it connects
        }
        Map<String, Object> msg = JSON.readValue(m.getPayload(), Map.class);
        msg.put("_topic", topic);
        msg.put("_retained", m.isRetained());
        if (topic.equals("kaiser/broadcast/emergency")) {
            broadcasts.add(msg);
            return;
        }
        String[] levels = topic.split("/");
        String esp = levels[3];
        if (levels[5].equals("emergency")) {
            emergencyMessages.add(msg);
            return;
        }
        commands.computeIfAbsent(esp, k -> new ConcurrentLinkedQueue<>()).add(msg);
        if (!answering) {
            return;
        }
        String gpio = levels[5];
        String answer = "{\"ts\":" + System.currentTimeMillis() / 1000 + ",\"esp_id\":\"" + esp + "\",\"gpio\":" + gpio
                + ",\"command\":\"" + msg.get("command") + "\",\"value\":" + msg.get("value") + ",\"duration\":" + msg.get("duration")
                + ",\"success\":true,\"message\":\"Command executed\",\"correlation_id\":\"" + msg.get("correlation_id") + "\"}";
        answerer.execute(() -> {
            publish(server.topic(esp, "actuator/" + gpio + "/response"), answer, 1);
            lastAnswerNanos.set(System.nanoTime());
        });
    }

    /** Commands a device received, in order. */
    public List<Map<String, Object>> commands(String espId) {
        Queue<Map<String, Object>> q = commands.get(espId);
        return q == null ? List.of() : List.copyOf(q);
    }

    /** Broadcast emergency messages of one incident (other servers share the broadcast topic). */
    public List<Map<String, Object>> broadcasts(String incidentId) {
        return broadcasts.stream().filter(b -> incidentId.equals(b.get("incident_correlation_id"))).toList();
    }

    /** Messages on the devices' actuator/emergency topics. */
    public List<Map<String, Object>> emergencyMessages() {
        return emergencyMessages;
    }

    /** System.nanoTime() of the last answer published. */
    public long lastAnswerNanos() {
        return lastAnswerNanos.get();
    }

    public void clear() {
        commands.clear();
        broadcasts.clear();
        emergencyMessages.clear();
    }

    private void publish(String topic, String payload, int qos) {
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (true) {
            try {
                client.publish(topic, payload.getBytes(StandardCharsets.UTF_8), qos, false);
                return;
            } catch (MqttException e) {
                if (e.getReasonCode() != 32202 || System.nanoTime() > deadline) {
                    throw new IllegalStateException(e);
                }
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
        }
    }

    @Override
    public void close() {
        answerer.shutdownNow();
        try {
            client.disconnect();
            client.close();
        } catch (MqttException ignored) {
            // closing
        }
    }
}
