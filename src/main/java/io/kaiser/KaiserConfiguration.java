package io.kaiser;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import javax.sql.DataSource;

import io.kaiser.api.Health;
import io.kaiser.contract.PayloadValidator;
import io.kaiser.contract.TopicTable;
import io.kaiser.db.Database;
import io.kaiser.device.DeviceRegistry;
import io.kaiser.ingest.DeferredWrites;
import io.kaiser.ingest.IngestDrainer;
import io.kaiser.ingest.IngestJournal;
import io.kaiser.ingest.IngestReceiver;
import io.kaiser.ingest.IngestRows;
import io.kaiser.live.LiveEventHub;
import io.kaiser.mqtt.KaiserMqttClient;
import io.kaiser.mqtt.TopicBuilder;
import io.kaiser.telemetry.TelemetryRows;
import org.apache.camel.BindToRegistry;
import org.apache.camel.CamelConfiguration;
import org.apache.camel.CamelContext;
import org.apache.camel.PropertyInject;
import org.apache.camel.StartupListener;
import org.apache.camel.support.service.ServiceSupport;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Kaiser's beans, built once from application.properties. Routes refer to them by name
 * ({@code bean: ref: deviceRegistry}, {@code client=#mqttIngress}).
 */
public class KaiserConfiguration implements CamelConfiguration, org.apache.camel.CamelContextAware {
    private static final Logger LOG = LoggerFactory.getLogger(KaiserConfiguration.class);

    private final java.util.Map<String, Object> beans = new java.util.concurrent.ConcurrentHashMap<>();
    private CamelContext camel;

    @Override
    public void setCamelContext(CamelContext camelContext) {
        this.camel = camelContext;
    }

    @Override
    public CamelContext getCamelContext() {
        return camel;
    }

    @PropertyInject("kaiser.id")
    String kaiserId;
    @PropertyInject(value = "kaiser.mode", defaultValue = "development")
    String mode;
    @PropertyInject(value = "kaiser.auth.enabled", defaultValue = "false")
    boolean authEnabled;
    @PropertyInject(value = "kaiser.auth.bootstrap-tokens", defaultValue = "")
    String bootstrapTokens;
    @PropertyInject("kaiser.instance-id")
    String instanceId;
    @PropertyInject(value = "kaiser.mqtt.shared-subscription-group", defaultValue = "")
    String sharedGroup;
    @PropertyInject("kaiser.mqtt.url")
    String mqttUrl;
    @PropertyInject(value = "kaiser.mqtt.username", defaultValue = "")
    String mqttUser;
    @PropertyInject(value = "kaiser.mqtt.password", defaultValue = "")
    String mqttPassword;
    @PropertyInject(value = "kaiser.mqtt.tls.ca-file", defaultValue = "")
    String mqttTlsCa;
    @PropertyInject(value = "kaiser.mqtt.tls.cert-file", defaultValue = "")
    String mqttTlsCert;
    @PropertyInject(value = "kaiser.mqtt.tls.key-file", defaultValue = "")
    String mqttTlsKey;
    @PropertyInject(value = "kaiser.mqtt.tls.hostname-verification", defaultValue = "true")
    boolean mqttTlsHostnameVerification;
    @PropertyInject("kaiser.mqtt.keepalive-seconds")
    int keepAlive;
    @PropertyInject("kaiser.mqtt.session-expiry-seconds")
    long sessionExpiry;
    @PropertyInject("kaiser.mqtt.client-id.ingest")
    String ingestClientId;
    @PropertyInject("kaiser.mqtt.client-id.publisher")
    String publisherClientId;
    @PropertyInject("kaiser.db.url")
    String dbUrl;
    @PropertyInject("kaiser.db.user")
    String dbUser;
    @PropertyInject(value = "kaiser.db.password", defaultValue = "")
    String dbPassword;
    @PropertyInject("kaiser.db.pool-size")
    int dbPoolSize;
    @PropertyInject("kaiser.db.connection-timeout-ms")
    long dbConnectionTimeout;
    @PropertyInject("kaiser.ingest.journal-dir")
    String journalDir;
    @PropertyInject("kaiser.ingest.journal-segment-bytes")
    long journalSegmentBytes;
    @PropertyInject("kaiser.ingest.journal-fsync-interval-ms")
    long fsyncInterval;
    @PropertyInject("kaiser.ingest.batch-size")
    int batchSize;
    @PropertyInject("kaiser.ingest.max-backoff-ms")
    long maxBackoff;
    @PropertyInject("kaiser.ingest.attempts-before-isolation")
    int attemptsBeforeIsolation;
    @PropertyInject("kaiser.ingest.max-payload-bytes")
    int maxPayloadBytes;
    @PropertyInject("kaiser.contract.max-gpio")
    int maxGpio;
    @PropertyInject("kaiser.registration.auto-approve")
    boolean autoApprove;
    @PropertyInject(value = "kaiser.registration.auto-approve-patterns", defaultValue = "")
    String autoApprovePatterns;
    @PropertyInject("kaiser.registration.rejection-cooldown-seconds")
    long rejectionCooldown;
    @PropertyInject("kaiser.heartbeat.timeout-seconds")
    long heartbeatTimeout;
    @PropertyInject("kaiser.heartbeat.ack-max-age-ms")
    long ackMaxAge;

    @PropertyInject(value = "kaiser.heartbeat.data-refresh-seconds", defaultValue = "60")
    long dataRefresh;
    @PropertyInject("kaiser.lwt.flapping-window-seconds")
    long flappingWindow;
    @PropertyInject("kaiser.lwt.flapping-threshold")
    int flappingThreshold;
    @PropertyInject(value = "kaiser.lwt.takeover-grace-ms", defaultValue = "3000")
    long takeoverGraceMs;
    @PropertyInject("kaiser.live.path")
    String livePath;
    @PropertyInject("kaiser.live.max-drops-before-close")
    int liveMaxDrops;
    @PropertyInject("kaiser.api.default-page-size")
    int apiDefaultPageSize;
    @PropertyInject("kaiser.api.max-page-size")
    int apiMaxPageSize;
    @PropertyInject("kaiser.command.rate-limit.per-second")
    double commandRatePerSecond;
    @PropertyInject("kaiser.command.rate-limit.burst")
    double commandRateBurst;
    @PropertyInject(value = "kaiser.metrics.refresh-ms", defaultValue = "5000")
    long metricsRefresh;
    @PropertyInject("kaiser.command.max-wait-seconds")
    int commandMaxWait;
    @PropertyInject(value = "kaiser.command.wait-threads", defaultValue = "4")
    int commandWaitThreads;
    @PropertyInject(value = "kaiser.http.worker-threads", defaultValue = "200")
    int httpWorkerThreads;
    @PropertyInject("kaiser.telemetry.max-future-skew-seconds")
    long maxFutureSkew;
    @PropertyInject(value = "kaiser.mqtt.client-id.provisioning", defaultValue = "")
    String provisioningClientId;
    @PropertyInject(value = "kaiser.provisioning.timeout-ms", defaultValue = "5000")
    long provisioningTimeout;
    @PropertyInject(value = "kaiser.provisioning.on-approve", defaultValue = "false")
    boolean provisioningOnApprove;

    /**
     * Camel's platform-http-vertx runs every request on a Vert.x worker thread, which stays parked while the request
     * waits for its command ({@code Prefer: wait}): the pool bounds how many requests are served or waiting at once.
     */
    @BindToRegistry
    public io.vertx.core.VertxOptions vertxOptions() {
        return once("vertxOptions", () -> new io.vertx.core.VertxOptions().setWorkerPoolSize(httpWorkerThreads));
    }

    @BindToRegistry
    public TopicTable topicTable() {
        return once("topicTable", TopicTable::new);
    }

    @BindToRegistry
    public TopicBuilder topicBuilder() {
        return once("topicBuilder", () -> new TopicBuilder(topicTable(), kaiserId));
    }

    @BindToRegistry
    public PayloadValidator payloadValidator() {
        return once("payloadValidator", () -> new PayloadValidator(topicTable(), maxPayloadBytes, maxGpio));
    }

    @BindToRegistry
    public Database database() {
        return once("database", () -> {
            Database db = new Database(dbUrl, dbUser, dbPassword, dbPoolSize, dbConnectionTimeout);
            db.start();
            return db;
        });
    }

    @BindToRegistry
    public DataSource dataSource() {
        return database().dataSource();
    }

    @BindToRegistry
    public IngestJournal ingestJournal() {
        return once("ingestJournal", () -> new IngestJournal(Path.of(journalDir), journalSegmentBytes, instanceId));
    }

    @BindToRegistry
    public IngestReceiver ingestReceiver() {
        return once("ingestReceiver", () -> new IngestReceiver(ingestJournal()));
    }

    @BindToRegistry
    public IngestRows ingestRows() {
        return once("ingestRows", IngestRows::new);
    }

    @BindToRegistry
    public TelemetryRows telemetryRows() {
        return once("telemetryRows", () -> new TelemetryRows(maxFutureSkew));
    }

    @BindToRegistry
    public io.kaiser.telemetry.TelemetryWriter telemetryWriter() {
        return once("telemetryWriter", () -> new io.kaiser.telemetry.TelemetryWriter(dataSource()));
    }

    /** Rows written once per ingest batch (routes/ingest.camel.yaml, diagnostics and heartbeat metrics). */
    @BindToRegistry
    public DeferredWrites deferredWrites() {
        return once("deferredWrites", DeferredWrites::new);
    }

    @BindToRegistry
    public DeviceRegistry deviceRegistry() {
        return once("deviceRegistry", this::newDeviceRegistry);
    }

    private DeviceRegistry newDeviceRegistry() {
        DeviceRegistry registry = new DeviceRegistry(dataSource(), kaiserId, autoApprove, autoApprovePatterns,
                Duration.ofSeconds(rejectionCooldown), Duration.ofSeconds(heartbeatTimeout), Duration.ofSeconds(flappingWindow),
                flappingThreshold);
        registry.setAckMaxAge(Duration.ofMillis(ackMaxAge));
        registry.setDataRefresh(Duration.ofSeconds(dataRefresh));
        LiveEventHub live = liveEvents();
        registry.setTakeoverGrace(Duration.ofMillis(takeoverGraceMs), live::publish);
        return registry;
    }

    /** Heartbeats of an ingest batch, registered or refreshed together (routes/device-lifecycle.camel.yaml). */
    @BindToRegistry
    public io.kaiser.device.HeartbeatStore heartbeatStore() {
        return once("heartbeatStore", () -> new io.kaiser.device.HeartbeatStore(dataSource(), deviceRegistry()));
    }

    @BindToRegistry
    public LiveEventHub liveEvents() {
        return once("liveEvents", () -> new LiveEventHub(livePath, liveMaxDrops));
    }

    /**
     * For routes ({@code filter: ref: liveClientsConnected}): whether any WebSocket client is connected, so that live
     * events are built and wire-tapped only then. A predicate bean rather than {@code ${bean:...}}: a bean expression
     * works on a copy of the exchange.
     */
    @BindToRegistry
    public org.apache.camel.Predicate liveClientsConnected() {
        return once("liveClientsConnected", () -> exchange -> liveEvents().clientCount() > 0);
    }

    /** The one connection that receives every device-to-server topic (persistent MQTT 5 session). */
    @BindToRegistry
    public KaiserMqttClient mqttIngress() {
        return once("mqttIngress", this::newIngress);
    }

    private KaiserMqttClient newIngress() throws MqttException {
        MqttConnectionOptions o = baseOptions();
        o.setCleanStart(false);
        o.setSessionExpiryInterval(sessionExpiry);
        KaiserMqttClient client = new KaiserMqttClient(io.kaiser.mqtt.MqttTls.normalizeUrl(mqttUrl), ingestClientId, o, "ingest");
        client.setSharedGroup(sharedGroup);
        return client;
    }

    /** The one connection every server-to-device publish goes through; its will says the server is offline. */
    @BindToRegistry
    public KaiserMqttClient mqttPublisher() {
        return once("mqttPublisher", this::newPublisher);
    }

    private KaiserMqttClient newPublisher() throws MqttException {
        TopicBuilder topicBuilder = topicBuilder();
        MqttConnectionOptions o = baseOptions();
        o.setCleanStart(true);
        MqttMessage will = new MqttMessage(serverStatus("offline", "unexpected_disconnect"));
        will.setQos(1);
        will.setRetained(true);
        o.setWill(serverStatusTopic(), will);
        KaiserMqttClient client = new KaiserMqttClient(io.kaiser.mqtt.MqttTls.normalizeUrl(mqttUrl), publisherClientId, o, "publisher");
        client.onConnect(c -> {
            try {
                c.publish(serverStatusTopic(), serverStatus("online", null), 1, true);
                // wipe a stale retained emergency stop left by older software: commands are never retained
                c.publish(topicBuilder.outbound("broadcast-emergency", ""), new byte[0], 0, true);
            } catch (MqttException e) {
                LOG.warn("Cannot publish server status: {}", e.getMessage());
            }
        });
        return client;
    }

    @BindToRegistry
    public io.kaiser.api.ApiRequests apiRequests() {
        return once("apiRequests", () -> new io.kaiser.api.ApiRequests(topicTable().espIdPattern(), maxGpio, apiDefaultPageSize, apiMaxPageSize));
    }

    @BindToRegistry
    public io.kaiser.command.CommandService commandService() {
        return once("commandService", () -> new io.kaiser.command.CommandService(dataSource(), topicBuilder(),
                durationPerType("kaiser.command.ack-timeout."),
                durationPerType("kaiser.command.ttl."),
                new io.kaiser.command.CommandService.RateLimiter(commandRatePerSecond, commandRateBurst)));
    }

    @BindToRegistry
    public io.kaiser.command.CommandMessage commandMessage() {
        return once("commandMessage", io.kaiser.command.CommandMessage::new);
    }

    @BindToRegistry
    public io.kaiser.command.CommandRequests commandRequests() {
        return once("commandRequests", io.kaiser.command.CommandRequests::new);
    }

    @BindToRegistry
    public io.kaiser.command.ConfigRequests configRequests() {
        return once("configRequests", () -> new io.kaiser.command.ConfigRequests(maxGpio));
    }

    @BindToRegistry
    public io.kaiser.command.ZoneRequests zoneRequests() {
        return once("zoneRequests", () -> new io.kaiser.command.ZoneRequests(kaiserId, maxGpio));
    }

    @BindToRegistry
    public io.kaiser.command.ZoneState zoneState() {
        return once("zoneState", () -> new io.kaiser.command.ZoneState(dataSource()));
    }

    @BindToRegistry
    public io.kaiser.command.CommandWaiter commandWaiter() {
        return once("commandWaiter", () -> {
            var waiter = new io.kaiser.command.CommandWaiter(dataSource(), commandService(), commandMaxWait, commandWaitThreads);
            commandService().setChangeListener(waiter::wake);
            commandService().setEndedListener(waiter::ended);
            return waiter;
        });
    }

    @BindToRegistry
    public io.kaiser.command.CommandEvents commandEvents() {
        return once("commandEvents", () -> new io.kaiser.command.CommandEvents(commandService()));
    }

    @BindToRegistry
    public io.kaiser.command.EmergencyService emergencyService() {
        return once("emergencyService", () -> new io.kaiser.command.EmergencyService(dataSource(), commandService(), topicBuilder(), maxGpio));
    }

    /** Per-device MQTT credentials in the broker's dynamic security plugin (its own connection, opened on first use). */
    @BindToRegistry
    public io.kaiser.provisioning.DeviceCredentials deviceCredentials() {
        return once("deviceCredentials", () -> new io.kaiser.provisioning.DeviceCredentials(dataSource(), kaiserId, mqttUrl,
                provisioningClientId.isBlank() ? instanceId + "-provisioning" : provisioningClientId, baseOptions(),
                Duration.ofMillis(provisioningTimeout), provisioningOnApprove));
    }

    /** The duration property {@code prefix + type} of each command type, resolved once per type (not per command). */
    private java.util.function.Function<String, Duration> durationPerType(String prefix) {
        Map<String, Optional<Duration>> resolved = new ConcurrentHashMap<>();
        return type -> resolved.computeIfAbsent(type, t -> Optional.ofNullable(duration(prefix + t))).orElse(null);
    }

    /** A duration property ("10s", "500ms", "2m"); "never" or empty means none. */
    private Duration duration(String key) {
        String v = camel.getPropertiesComponent().resolveProperty(key).orElse("never").trim();
        if (v.isEmpty() || v.equals("never")) {
            return null;
        }
        return Duration.ofMillis(org.apache.camel.util.TimeUtils.toMilliSeconds(v));
    }

    @BindToRegistry
    public io.kaiser.auth.ApiAuth apiAuth() {
        return once("apiAuth", () -> {
            if ("production".equalsIgnoreCase(mode) && !authEnabled) {
                throw new IllegalStateException("kaiser.mode=production needs kaiser.auth.enabled=true: refusing to serve an open API");
            }
            return new io.kaiser.auth.ApiAuth(dataSource(), authEnabled);
        });
    }

    @BindToRegistry
    public io.kaiser.metrics.KaiserMetrics kaiserMetrics() {
        return once("kaiserMetrics", () -> {
            io.kaiser.metrics.KaiserMetrics m = new io.kaiser.metrics.KaiserMetrics(dataSource());
            m.gauge("kaiser_ingest_received", "messages appended to the ingest journal since start", () -> ingestReceiver().received());
            m.gauge("kaiser_ingest_stored", "messages stored from the journal since start", () -> ingestDrainer().processed());
            m.gauge("kaiser_ingest_backlog_bytes", "journal bytes not yet stored", () -> ingestDrainer().backlogBytes());
            m.gauge("kaiser_ingest_lag_ms", "how long the first message of the last stored batch waited from arrival until stored",
                    () -> ingestDrainer().lagMillis());
            m.gauge("kaiser_websocket_clients", "connected live-event clients", () -> liveEvents().clientCount());
            m.gauge("kaiser_websocket_events_dropped", "live events not sent to a slow client", () -> liveEvents().dropped());
            m.gauge("kaiser_mqtt_connected", "1 when both MQTT connections are up", () -> mqttIngress().isConnected() && mqttPublisher().isConnected() ? 1 : 0);
            commandService().setAckListener(m::ackLatency);
            return m;
        });
    }

    /** Device answers of an ingest batch: idempotency key, row and command change in one transaction per batch. */
    @BindToRegistry
    public io.kaiser.command.AnswerStore answerStore() {
        return once("answerStore", () -> new io.kaiser.command.AnswerStore(dataSource(), commandService(), ingestRows()));
    }

    /**
     * Idempotent consumer repository in PostgreSQL (survives restarts, shared by instances) for integrators' routes;
     * processor name device-answers holds the keys of the answers {@link #answerStore()} processed.
     */
    @BindToRegistry
    public org.apache.camel.processor.idempotent.jdbc.JdbcMessageIdRepository answerIdRepository() {
        return once("answerIdRepository", () -> {
            var repo = new org.apache.camel.processor.idempotent.jdbc.JdbcMessageIdRepository(dataSource(), "device-answers");
            repo.setCreateTableIfNotExists(false);
            return repo;
        });
    }

    @BindToRegistry
    public IngestDrainer ingestDrainer() {
        return once("ingestDrainer", () -> new IngestDrainer(ingestJournal(), camel, "direct:ingest-batch", "direct:dead-letter", batchSize, maxBackoff,
                attemptsBeforeIsolation, database()::reachable));
    }

    @BindToRegistry
    public Health health() {
        return once("health", () -> {
            Health h = new Health(mqttIngress(), mqttPublisher(), database(), ingestReceiver(), ingestDrainer(), liveEvents());
            h.setDeadLetters(ingestRows()::deadLetters);
            h.setOutboxDepth(() -> {
                try {
                    return database().reachable() ? commandService().outboxDepth() : -1;
                } catch (java.sql.SQLException e) {
                    return -1;
                }
            });
            return h;
        });
    }

    /** A checked supplier. */
    interface Factory<T> {
        T create() throws Exception;
    }

    /** Each bean exists once, however many beans refer to it. */
    @SuppressWarnings("unchecked")
    private synchronized <T> T once(String name, Factory<T> factory) {
        Object bean = beans.get(name);
        if (bean == null) {
            try {
                bean = factory.create();
            } catch (RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new IllegalStateException("cannot create bean " + name, e);
            }
            beans.put(name, bean);
        }
        return (T) bean;
    }

    private MqttConnectionOptions baseOptions() {
        MqttConnectionOptions o = new MqttConnectionOptions();
        o.setAutomaticReconnect(true);
        o.setAutomaticReconnectDelay(1, 10);
        o.setKeepAliveInterval(keepAlive);
        o.setConnectionTimeout(10);
        if (!mqttUser.isEmpty()) {
            o.setUserName(mqttUser);
            o.setPassword(mqttPassword.getBytes(StandardCharsets.UTF_8));
        }
        if (io.kaiser.mqtt.MqttTls.isTls(mqttUrl)) {
            o.setSocketFactory(io.kaiser.mqtt.NoDelaySockets.tls(io.kaiser.mqtt.MqttTls.socketFactory(mqttTlsCa, mqttTlsCert, mqttTlsKey)));
            o.setHttpsHostnameVerificationEnabled(mqttTlsHostnameVerification);
        } else {
            o.setSocketFactory(io.kaiser.mqtt.NoDelaySockets.plain());
        }
        return o;
    }

    String serverStatusTopic() {
        return "kaiser/" + kaiserId + "/server/status";
    }

    static byte[] serverStatus(String status, String reason) {
        String json = "{\"status\":\"" + status + "\",\"timestamp\":" + System.currentTimeMillis() / 1000
                + (reason == null ? "" : ",\"reason\":\"" + reason + "\"") + "}";
        return json.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public void configure(CamelContext camel) throws Exception {
        camel.addService(new Lifecycle(camel), true, true);
    }

    /** Starts the connections and the drainer once every route is up, and stops them in the right order. */
    private final class Lifecycle extends ServiceSupport implements StartupListener {
        private final CamelContext camel;
        private ScheduledExecutorService flusher;

        Lifecycle(CamelContext camel) {
            this.camel = camel;
        }

        @Override
        protected void doStart() throws Exception {
            camel.addStartupListener(this);
            // stop taking messages before the routes go away, so no batch meets a stopped route
            camel.getManagementStrategy().addEventNotifier(new org.apache.camel.support.EventNotifierSupport() {
                @Override
                public void notify(org.apache.camel.spi.CamelEvent event) {
                    if (event instanceof org.apache.camel.spi.CamelEvent.CamelContextStoppingEvent) {
                        var registry = camel.getRegistry();
                        registry.lookupByNameAndType("mqttIngress", KaiserMqttClient.class).shutdown(null);
                        registry.lookupByNameAndType("ingestDrainer", IngestDrainer.class).stop();
                    }
                }
            });
        }

        @Override
        public void onCamelContextStarted(CamelContext context, boolean alreadyStarted) throws Exception {
            // before the routes take traffic: the API is never open for a moment when authentication is on
            io.kaiser.auth.ApiAuth auth = context.getRegistry().lookupByNameAndType("apiAuth", io.kaiser.auth.ApiAuth.class);
            auth.mount(context);
            if (auth.enabled() && !bootstrapTokens.isBlank()) {
                try {
                    auth.bootstrap(bootstrapTokens);
                } catch (java.sql.SQLException e) {
                    LOG.warn("Bootstrap tokens not stored (database not ready): {}", e.getMessage());
                }
            }
        }

        @Override
        public void onCamelContextFullyStarted(CamelContext context, boolean alreadyStarted) throws Exception {
            var registry = context.getRegistry();
            registry.lookupByNameAndType("liveEvents", LiveEventHub.class).start(context);
            io.kaiser.api.HttpErrors.mount(context);
            IngestJournal journal = registry.lookupByNameAndType("ingestJournal", IngestJournal.class);
            flusher = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "ingest-journal-fsync");
                t.setDaemon(true);
                return t;
            });
            flusher.scheduleWithFixedDelay(journal::sync, fsyncInterval, fsyncInterval, TimeUnit.MILLISECONDS);
            registry.lookupByNameAndType("commandWaiter", io.kaiser.command.CommandWaiter.class).startListening();
            registry.lookupByNameAndType("kaiserMetrics", io.kaiser.metrics.KaiserMetrics.class).start(metricsRefresh);
            registry.lookupByNameAndType("mqttPublisher", KaiserMqttClient.class).start();
            registry.lookupByNameAndType("ingestDrainer", IngestDrainer.class).start();
            registry.lookupByNameAndType("mqttIngress", KaiserMqttClient.class).start();
        }

        @Override
        protected void doStop() {
            var registry = camel.getRegistry();
            registry.lookupByNameAndType("mqttIngress", KaiserMqttClient.class).shutdown(null);
            registry.lookupByNameAndType("ingestDrainer", IngestDrainer.class).stop();
            KaiserMqttClient publisher = registry.lookupByNameAndType("mqttPublisher", KaiserMqttClient.class);
            publisher.shutdown(() -> {
                try {
                    publisher.publish(serverStatusTopic(), serverStatus("offline", "graceful_shutdown"), 1, true);
                } catch (MqttException e) {
                    LOG.warn("Cannot publish graceful offline status: {}", e.getMessage());
                }
            });
            if (flusher != null) {
                flusher.shutdownNow();
            }
            registry.lookupByNameAndType("commandWaiter", io.kaiser.command.CommandWaiter.class).stop();
            registry.lookupByNameAndType("kaiserMetrics", io.kaiser.metrics.KaiserMetrics.class).close();
            registry.lookupByNameAndType("deviceCredentials", io.kaiser.provisioning.DeviceCredentials.class).close();
            registry.lookupByNameAndType("ingestJournal", IngestJournal.class).close();
            registry.lookupByNameAndType("database", Database.class).close();
        }
    }
}
