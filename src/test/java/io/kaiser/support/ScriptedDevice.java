package io.kaiser.support;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttCallback;
import org.eclipse.paho.mqttv5.client.MqttClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.MqttDisconnectResponse;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.eclipse.paho.mqttv5.common.packet.MqttProperties;

/**
 * A device in a test that answers commands like the original firmware: actuator/{gpio}/response,
 * sensor/{gpio}/response, system/command/response, echoing correlation_id. Its behaviour can be switched to
 * not answering, answering twice, answering late or answering with another id.
 */
public final class ScriptedDevice implements AutoCloseable {
    public enum Mode { ANSWER, SILENT, TWICE, LATE, WRONG_ID, FAIL }

    private static final ObjectMapper JSON = new ObjectMapper();
    private final KaiserServer server;
    private final String espId;
    private final MqttClient client;
    private final ScheduledExecutorService later = Executors.newSingleThreadScheduledExecutor();
    private final List<Map<String, Object>> received = new CopyOnWriteArrayList<>();
    private volatile Mode mode = Mode.ANSWER;
    private volatile long lateMillis = 3000;
    private volatile boolean subscribed;

    public ScriptedDevice(KaiserServer server, String mqttUrl, String espId) {
        this.server = server;
        this.espId = espId;
        try {
            client = new MqttClient(mqttUrl, espId + "-" + server.kaiserId(), new MemoryPersistence());
            client.setCallback(new MqttCallback() {
                public void disconnected(MqttDisconnectResponse r) {
                    subscribed = false;
                }
                public void mqttErrorOccurred(MqttException e) { }
                public void messageArrived(String topic, MqttMessage m) throws Exception {
                    onCommand(topic, m);
                }
                public void deliveryComplete(IMqttToken t) { }
                public void connectComplete(boolean reconnect, String uri) {
                    if (reconnect) {
                        // a clean-start session loses its subscriptions: subscribe again, as the firmware does
                        new Thread(ScriptedDevice.this::subscribeAll).start();
                    }
                }
                public void authPacketArrived(int code, MqttProperties p) { }
            });
            MqttConnectionOptions o = new MqttConnectionOptions();
            o.setAutomaticReconnect(true);
            o.setAutomaticReconnectDelay(1, 2);
            client.connect(o);
            subscribeAll();
            // Paho's automatic reconnect can give up after a failed attempt; like the firmware, keep trying
            later.scheduleWithFixedDelay(() -> {
                if (!client.isConnected()) {
                    try {
                        client.reconnect();
                    } catch (MqttException e) {
                        // still away, or a reconnect is already running
                    }
                }
            }, 2, 2, TimeUnit.SECONDS);
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
    }

    private void subscribeAll() {
        try {
            client.subscribe(server.topic(espId, "actuator/+/command"), 2);
            client.subscribe(server.topic(espId, "sensor/+/command"), 2);
            client.subscribe(server.topic(espId, "system/command"), 2);
            subscribed = true;
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Connected and subscribed to its command topics (a clean-start session subscribes again after a reconnect). */
    public boolean subscribed() {
        return subscribed && client.isConnected();
    }

    public ScriptedDevice mode(Mode m) {
        this.mode = m;
        return this;
    }

    public ScriptedDevice lateBy(long millis) {
        this.lateMillis = millis;
        return this;
    }

    /** Commands the device received, in order. */
    public List<Map<String, Object>> received() {
        return received;
    }

    /** Registers (heartbeat) and reports an actuator on gpio, so commands to it are accepted. */
    public void announce(int actuatorGpio) {
        publish(server.topic(espId, "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}", 0);
        publish(server.topic(espId, "actuator/" + actuatorGpio + "/status"), "{\"ts\":1735818000,\"esp_id\":\"" + espId + "\",\"gpio\":"
                + actuatorGpio + ",\"type\":\"pump\",\"state\":false,\"pwm\":0}", 1);
    }

    @SuppressWarnings("unchecked")
    private void onCommand(String topic, MqttMessage m) throws Exception {
        Map<String, Object> cmd = JSON.readValue(m.getPayload(), Map.class);
        cmd.put("_topic", topic);
        // MQTT 5 user properties of the publish (traceparent), as "_user_properties" {name: value}
        Map<String, String> userProperties = new java.util.LinkedHashMap<>();
        if (m.getProperties() != null && m.getProperties().getUserProperties() != null) {
            m.getProperties().getUserProperties().forEach(p -> userProperties.put(p.getKey(), p.getValue()));
        }
        cmd.put("_user_properties", userProperties);
        received.add(cmd);
        String[] levels = topic.split("/");
        String corr = (String) cmd.get("correlation_id");
        String answerTopic;
        String answer;
        boolean ok = mode != Mode.FAIL;
        String id = mode == Mode.WRONG_ID ? "not-" + corr : corr;
        if (topic.endsWith("/command") && levels[4].equals("actuator")) {
            answerTopic = server.topic(espId, "actuator/" + levels[5] + "/response");
            answer = "{\"ts\":" + System.currentTimeMillis() / 1000 + ",\"esp_id\":\"" + espId + "\",\"gpio\":" + levels[5]
                    + ",\"command\":\"" + cmd.get("command") + "\",\"value\":" + cmd.get("value") + ",\"duration\":" + cmd.get("duration")
                    + ",\"success\":" + ok + ",\"message\":\"" + (ok ? "Command executed" : "Failed to turn actuator ON")
                    + "\",\"correlation_id\":\"" + id + "\"}";
        } else if (levels[4].equals("sensor")) {
            answerTopic = server.topic(espId, "sensor/" + levels[5] + "/response");
            answer = "{\"request_id\":\"" + id + "\",\"gpio\":" + levels[5] + ",\"command\":\"measure\",\"success\":" + ok
                    + ",\"sensor_type\":\"ds18b20\",\"raw\":356,\"quality\":\"good\",\"intent_id\":\"" + id + "\",\"correlation_id\":\"" + id + "\"}";
        } else {
            answerTopic = server.topic(espId, "system/command/response");
            answer = "{\"command\":\"" + cmd.get("command") + "\",\"success\":" + ok + ",\"correlation_id\":\"" + id + "\",\"message\":\"done\"}";
        }
        switch (mode) {
            case SILENT -> { }
            case TWICE -> {
                publish(answerTopic, answer, 1);
                publish(answerTopic, answer, 1);
            }
            case LATE -> later.schedule(() -> publish(answerTopic, answer, 1), lateMillis, TimeUnit.MILLISECONDS);
            default -> publish(answerTopic, answer, 1);
        }
    }

    private void publish(String topic, String payload, int qos) {
        try {
            client.publish(topic, payload.getBytes(StandardCharsets.UTF_8), qos, false);
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        later.shutdownNow();
        try {
            client.disconnect();
            client.close();
        } catch (MqttException ignored) {
            // closing
        }
    }
}
