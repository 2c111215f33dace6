package io.kaiser.support;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.eclipse.paho.mqttv5.client.MqttClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.eclipse.paho.mqttv5.common.MqttSubscription;

/** A plain MQTT 5 client playing a device (or an observer) in tests. */
public final class MqttTestClient implements AutoCloseable {
    /** A received message. */
    public record Received(String topic, String payload, int qos, boolean retained) { }

    private final MqttClient client;
    private final BlockingQueue<Received> inbox = new LinkedBlockingQueue<>();

    public MqttTestClient(String url) {
        this(url, "test-" + UUID.randomUUID().toString().substring(0, 12), null);
    }

    public MqttTestClient(String url, String clientId, MqttConnectionOptions options) {
        try {
            client = new MqttClient(url, clientId, new MemoryPersistence());
            client.setCallback(new org.eclipse.paho.mqttv5.client.MqttCallback() {
                public void disconnected(org.eclipse.paho.mqttv5.client.MqttDisconnectResponse r) { }
                public void mqttErrorOccurred(MqttException e) { }
                public void messageArrived(String topic, MqttMessage m) {
                    inbox.add(new Received(topic, new String(m.getPayload(), StandardCharsets.UTF_8), m.getQos(), m.isRetained()));
                }
                public void deliveryComplete(org.eclipse.paho.mqttv5.client.IMqttToken t) { }
                public void connectComplete(boolean reconnect, String uri) { }
                public void authPacketArrived(int code, org.eclipse.paho.mqttv5.common.packet.MqttProperties p) { }
            });
            MqttConnectionOptions o = options != null ? options : new MqttConnectionOptions();
            client.connect(o);
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
    }

    public MqttTestClient subscribe(String filter, int qos) {
        try {
            client.subscribe(new MqttSubscription[] {new MqttSubscription(filter, qos)}).waitForCompletion(5000);
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
        return this;
    }

    public void publish(String topic, String payload, int qos) {
        publish(topic, payload, qos, false);
    }

    public void publish(String topic, String payload, int qos, boolean retained) {
        publish(topic, payload.getBytes(StandardCharsets.UTF_8), qos, retained);
    }

    public void publish(String topic, byte[] payload, int qos) {
        publish(topic, payload, qos, false);
    }

    /** Publishes; when the client's in-flight window is momentarily full, waits for it to drain and retries. */
    public void publish(String topic, byte[] payload, int qos, boolean retained) {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            try {
                client.publish(topic, payload, qos, retained);
                return;
            } catch (MqttException e) {
                if (e.getReasonCode() != 32202 || System.nanoTime() > deadline) {
                    throw new IllegalStateException(e);
                }
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
        }
    }

    /** The next message, or null after the timeout. */
    public Received next(Duration timeout) {
        try {
            return inbox.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** The next message on a topic, skipping others, or null after the timeout. */
    public Received next(String topic, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            Received r = next(Duration.ofNanos(deadline - System.nanoTime()));
            if (r != null && r.topic().equals(topic)) {
                return r;
            }
        }
        return null;
    }

    public void clear() {
        inbox.clear();
    }

    /** Drops the TCP connection without DISCONNECT, so the broker publishes the will. */
    public void crash() {
        try {
            client.disconnectForcibly(0, 0, false);
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        try {
            if (client.isConnected()) {
                client.disconnect();
            }
            client.close(true);
        } catch (MqttException ignored) {
            // closing
        }
    }
}
