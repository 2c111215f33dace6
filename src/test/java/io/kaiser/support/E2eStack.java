package io.kaiser.support;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.awaitility.Awaitility.await;

/**
 * The whole system as users run it, for the end-to-end suite: Mosquitto with the project's
 * {@code mosquitto/mosquitto.conf}, the Kaiser server in its own JVM ({@code io.kaiser.KaiserMain} with the
 * project's routes and application.properties), PostgreSQL, and the firmware's virtual devices. Tests drive it
 * only through its public faces: REST, WebSocket, MQTT, and SQL for checking.
 */
public final class E2eStack implements AutoCloseable {
    private final ProjectBroker broker;
    private final KaiserServer server;
    private ServerProcess process;

    public E2eStack(String name, Map<String, String> serverProperties) {
        broker = new ProjectBroker().start();
        Map<String, String> properties = new HashMap<>(serverProperties);
        properties.put("kaiser.mqtt.url", broker.url());
        server = new KaiserServer(name, properties);
    }

    public E2eStack start() {
        process = new ServerProcess(server).start();
        awaitHealthy(Duration.ofSeconds(60));
        return this;
    }

    public void awaitHealthy(Duration timeout) {
        await().atMost(timeout).ignoreExceptions().until(() -> Http.get(baseUrl() + "/health").status() == 200);
    }

    /** SIGKILL the server: no shutdown hook, no graceful MQTT disconnect, no flush. */
    public void killServer() {
        process.kill();
    }

    /** Starts the server again with the same identity (kaiser_id, instance id, MQTT session, journal, database). */
    public void startServer() {
        process = new ServerProcess(server).start();
        awaitHealthy(Duration.ofSeconds(60));
    }

    public ProjectBroker broker() {
        return broker;
    }

    public KaiserServer server() {
        return server;
    }

    public String kaiserId() {
        return server.kaiserId();
    }

    public String baseUrl() {
        return server.baseUrl();
    }

    public String wsUrl() {
        return server.wsUrl();
    }

    public String topic(String espId, String suffix) {
        return server.topic(espId, suffix);
    }

    /** Virtual devices connected straight to this stack's broker. */
    public VirtualDevices devices(String prefix, int count, String... options) {
        return VirtualDevices.start(kaiserId(), broker.deviceUrl(), prefix, count, options);
    }

    /** Virtual devices connected through a link the test can cut. */
    public VirtualDevices devices(TcpLink link, String prefix, int count, String... options) {
        return VirtualDevices.start(kaiserId(), link.deviceUrl(), prefix, count, options);
    }

    public TcpLink link() {
        return new TcpLink(broker.port());
    }

    public List<Map<String, Object>> query(String sql) {
        return server.query(sql);
    }

    public long count(String sql) {
        return server.count(sql);
    }

    @Override
    public void close() {
        if (process != null) {
            process.close();
        }
        broker.close();
    }
}
