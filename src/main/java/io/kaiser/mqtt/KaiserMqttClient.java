package io.kaiser.mqtt;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;

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
 * One long-lived MQTT 5 connection with a stable client id, shared by many paho-mqtt5 endpoints
 * ({@code client=#mqttIngress}).
 *
 * <p>The paho-mqtt5 consumer installs its own callback on the client it is given, so several consumers on
 * one plain client would steal each other's messages. This client instead remembers, per subscription,
 * which consumer asked for it and dispatches each message to the consumer whose filter matches. It
 * connects only once the routes have registered their subscriptions, so that messages the broker kept
 * for the persistent session while the server was down find their route the moment they arrive.
 * The first connection attempt is retried in the background: a broker that is down at boot delays
 * ingest, it does not stop the server.
 */
public class KaiserMqttClient extends MqttClient {
    private static final Logger LOG = LoggerFactory.getLogger(KaiserMqttClient.class);

    private record Route(String filter, int qos, MqttCallback consumer, TopicFilter matcher) {
        Route(String filter, int qos, MqttCallback consumer) {
            this(filter, qos, consumer, new TopicFilter(filter));
        }
    }

    private final MqttConnectionOptions options;
    private final String name;
    private final Map<String, Route> routes = new ConcurrentHashMap<>();
    private final List<Consumer<KaiserMqttClient>> onConnect = new CopyOnWriteArrayList<>();
    private final ExecutorService control;
    private volatile MqttCallback pendingConsumer;
    private volatile boolean running;
    private volatile Thread connector;
    private volatile String lastError = "not connected yet";
    private volatile String sharedGroup = "";

    /**
     * Several server instances on one broker split the device messages between them when they subscribe in one
     * MQTT 5 shared subscription group ({@code $share/<group>/...}); empty means every instance gets everything.
     */
    public void setSharedGroup(String group) {
        this.sharedGroup = group == null ? "" : group.trim();
    }

    private String wire(String filter) {
        return sharedGroup.isEmpty() ? filter : "$share/" + sharedGroup + "/" + filter;
    }

    public KaiserMqttClient(String brokerUrl, String clientId, MqttConnectionOptions options, String name) throws MqttException {
        super(brokerUrl, clientId, new MemoryPersistence());
        this.options = options;
        this.name = name;
        this.control = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "mqtt-" + name + "-control");
            t.setDaemon(true);
            return t;
        });
        super.setCallback(new Dispatcher());
    }

    /** Runs after every successful (re)connect, off the MQTT callback thread. */
    public void onConnect(Consumer<KaiserMqttClient> action) {
        onConnect.add(action);
    }

    @Override
    public void setCallback(MqttCallback callback) {
        // called by a paho-mqtt5 consumer right before it subscribes its topic
        this.pendingConsumer = callback;
    }

    @Override
    public IMqttToken subscribe(String topicFilter, int qos) throws MqttException {
        MqttCallback consumer = pendingConsumer;
        routes.put(topicFilter, new Route(topicFilter, qos, consumer));
        if (isConnected()) {
            return super.subscribe(new MqttSubscription[] {subscription(wire(topicFilter), qos)});
        }
        return null;
    }

    @Override
    public void unsubscribe(String topicFilter) throws MqttException {
        routes.remove(topicFilter);
        if (isConnected()) {
            super.unsubscribe(wire(topicFilter));
        }
    }

    /**
     * Publishes; when Paho reports its in-flight window full (it frees a slot slightly after the publish returned),
     * waits briefly and tries again rather than failing the command and tripping the publish circuit breaker.
     * QoS 0 (heartbeat ACKs) has no acknowledgement to wait for: it is queued for Paho's sender thread and the caller
     * goes on (Paho's blocking publish waited for that thread's socket write: 9 % of the ingest drainer while 10,000
     * devices registered). Paho sends one client's messages in the order they were queued.
     */
    @Override
    public void publish(String topic, org.eclipse.paho.mqttv5.common.MqttMessage message) throws MqttException {
        long deadline = System.nanoTime() + 2_000_000_000L;
        while (true) {
            try {
                if (message.getQos() == 0) {
                    aClient.publish(topic, message);
                } else {
                    super.publish(topic, message);
                }
                return;
            } catch (MqttException e) {
                if (e.getReasonCode() != org.eclipse.paho.mqttv5.client.MqttClientException.REASON_CODE_MAX_INFLIGHT || System.nanoTime() > deadline) {
                    throw e;
                }
                java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
            }
        }
    }

    /** The QoS each filter is subscribed with, for tests and health. */
    public Map<String, Integer> subscriptions() {
        Map<String, Integer> out = new ConcurrentHashMap<>();
        routes.values().forEach(r -> out.put(r.filter(), r.qos()));
        return out;
    }

    private static MqttSubscription subscription(String filter, int qos) {
        MqttSubscription s = new MqttSubscription(filter, qos);
        // 1 = retained messages only when the subscription is new: a reconnect does not replay stale retained state
        s.setRetainHandling(1);
        return s;
    }

    /** Starts connecting in the background (idempotent). */
    public synchronized void start() {
        if (running) {
            return;
        }
        running = true;
        connector = new Thread(this::connectLoop, "mqtt-" + name + "-connect");
        connector.setDaemon(true);
        connector.start();
    }

    private void connectLoop() {
        long delay = 250;
        while (running && !isConnected()) {
            try {
                connect(options);
                LOG.info("MQTT {} connected to {} as {}", name, getServerURI(), getClientId());
                lastError = null;
                afterConnect();
                watchdog();
                return;
            } catch (MqttException e) {
                lastError = describe(e);
                LOG.warn("MQTT {} cannot connect to {} ({}); retrying in {} ms", name, getServerURI(), lastError, delay);
                try {
                    Thread.sleep(delay);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return;
                }
                delay = Math.min(delay * 2, 5000);
            }
        }
    }

    /**
     * Paho's automatic reconnect sometimes gives up after a failed attempt (seen when the broker comes back while a
     * persistent session reconnects). The watchdog makes sure a lost connection is always tried again.
     */
    private void watchdog() {
        Thread t = new Thread(() -> {
            long disconnectedSince = 0;
            while (running) {
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    return;
                }
                if (isConnected()) {
                    disconnectedSince = 0;
                    continue;
                }
                long now = System.currentTimeMillis();
                if (disconnectedSince == 0) {
                    disconnectedSince = now;
                } else if (now - disconnectedSince > 3000) {
                    try {
                        reconnect();
                    } catch (MqttException e) {
                        // "connect already in progress" or the broker is still away: try again next round
                        LOG.debug("MQTT {} reconnect attempt: {}", name, e.getMessage());
                    }
                }
            }
        }, "mqtt-" + name + "-watchdog");
        t.setDaemon(true);
        t.start();
    }

    private void afterConnect() {
        control.execute(() -> {
            try {
                if (!routes.isEmpty()) {
                    MqttSubscription[] subs = routes.values().stream().map(r -> subscription(wire(r.filter()), r.qos()))
                            .toArray(MqttSubscription[]::new);
                    super.subscribe(subs);
                }
                for (Consumer<KaiserMqttClient> action : onConnect) {
                    action.accept(this);
                }
            } catch (Exception e) {
                LOG.warn("MQTT {} post-connect step failed: {}", name, e.getMessage());
            }
        });
    }

    /** Paho's message plus the root cause, which says what went wrong (a TLS handshake failure, a refused socket). */
    static String describe(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String msg = e.getMessage();
        return root == e ? msg : msg + " (" + root.getClass().getSimpleName() + ": " + root.getMessage() + ")";
    }

    public String lastError() {
        return lastError;
    }

    public String name() {
        return name;
    }

    /** Stops reconnecting and disconnects; {@code beforeDisconnect} runs while still connected. */
    public synchronized void shutdown(Runnable beforeDisconnect) {
        running = false;
        if (connector != null) {
            connector.interrupt();
        }
        try {
            if (isConnected()) {
                if (beforeDisconnect != null) {
                    beforeDisconnect.run();
                }
                disconnect(2000);
            }
        } catch (Exception e) {
            LOG.debug("MQTT {} disconnect: {}", name, e.getMessage());
        }
        try {
            close(true);
        } catch (Exception e) {
            LOG.debug("MQTT {} close: {}", name, e.getMessage());
        }
        control.shutdownNow();
    }

    private final class Dispatcher implements MqttCallback {
        @Override
        public void messageArrived(String topic, MqttMessage message) throws Exception {
            for (Route r : routes.values()) {
                if (r.consumer() != null && r.matcher().matches(topic)) {
                    r.consumer().messageArrived(topic, message);
                    return;
                }
            }
            LOG.warn("MQTT {}: no route for message on {}", name, topic);
        }

        @Override
        public void connectComplete(boolean reconnect, String serverURI) {
            if (reconnect) {
                LOG.info("MQTT {} reconnected to {}", name, serverURI);
                lastError = null;
                afterConnect();
            }
        }

        @Override
        public void disconnected(MqttDisconnectResponse response) {
            lastError = "disconnected: " + response.getReasonString();
            LOG.warn("MQTT {} disconnected: {}", name, response.getReasonString(), response.getException());
        }

        @Override
        public void mqttErrorOccurred(MqttException exception) {
            LOG.warn("MQTT {} error: {}", name, exception.getMessage());
        }

        @Override
        public void deliveryComplete(IMqttToken token) {
        }

        @Override
        public void authPacketArrived(int reasonCode, MqttProperties properties) {
        }
    }
}
