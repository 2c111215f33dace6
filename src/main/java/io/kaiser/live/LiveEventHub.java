package io.kaiser.live;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.vertx.core.http.ServerWebSocket;
import io.vertx.ext.web.RoutingContext;
import org.apache.camel.CamelContext;
import org.apache.camel.component.platform.http.vertx.VertxPlatformHttpRouter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Live events over WebSocket on the REST port ({@code /api/v1/ws/realtime}). Each client may narrow what it
 * gets by event type and esp_id, on connect ({@code ?types=a,b&esp_ids=X}) or with
 * {@code {"action":"subscribe","filters":{"types":[...],"esp_ids":[...]}}}. Publishing never blocks: a client
 * whose send queue is full misses the event, and one that stays full is disconnected.
 */
public final class LiveEventHub {
    private static final Logger LOG = LoggerFactory.getLogger(LiveEventHub.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String path;
    private final int maxDropsBeforeClose;
    private final Map<ServerWebSocket, Client> clients = new ConcurrentHashMap<>();
    private final LongAdder published = new LongAdder();
    private final LongAdder dropped = new LongAdder();

    public LiveEventHub(String path, int maxDropsBeforeClose) {
        this.path = path;
        this.maxDropsBeforeClose = maxDropsBeforeClose;
    }

    private static final class Client {
        final ServerWebSocket ws;
        volatile Set<String> types = Set.of();
        volatile Set<String> espIds = Set.of();
        final AtomicInteger consecutiveDrops = new AtomicInteger();

        Client(ServerWebSocket ws) {
            this.ws = ws;
        }

        boolean wants(LiveEvent e) {
            return (types.isEmpty() || types.contains(e.type())) && (espIds.isEmpty() || e.espId() == null || espIds.contains(e.espId()));
        }
    }

    /** Mounts the endpoint on the platform-http router; call once the HTTP server runs. */
    public void start(CamelContext camel) {
        String port = camel.resolvePropertyPlaceholders("{{camel.server.port:8080}}");
        VertxPlatformHttpRouter router = VertxPlatformHttpRouter.lookup(camel, VertxPlatformHttpRouter.getRouterNameFromPort(Integer.parseInt(port)));
        if (router == null) {
            router = VertxPlatformHttpRouter.lookup(camel);
        }
        if (router == null) {
            throw new IllegalStateException("platform-http (Vert.x) router not found: is camel.server.enabled=true?");
        }
        router.route(path).order(-100).handler(this::upgrade);
        LOG.info("Live events on ws://...{}", path);
    }

    private void upgrade(RoutingContext ctx) {
        String upgrade = ctx.request().getHeader("Upgrade");
        if (upgrade == null || !"websocket".equalsIgnoreCase(upgrade)) {
            ctx.response().setStatusCode(426).putHeader("Content-Type", "application/problem+json")
                    .end("{\"type\":\"about:blank\",\"title\":\"Upgrade Required\",\"status\":426,"
                            + "\"detail\":\"this endpoint speaks WebSocket only\"}");
            return;
        }
        ctx.request().toWebSocket().onSuccess(ws -> {
            Client c = new Client(ws);
            c.types = csv(ctx.request().getParam("types"));
            c.espIds = csv(ctx.request().getParam("esp_ids"));
            clients.put(ws, c);
            ws.textMessageHandler(text -> onClientMessage(c, text));
            ws.closeHandler(v -> clients.remove(ws));
            ws.exceptionHandler(e -> clients.remove(ws));
            send(c, welcome(c));
        }).onFailure(e -> LOG.debug("WebSocket upgrade failed: {}", e.getMessage()));
    }

    private String welcome(Client c) {
        return "{\"type\":\"connected\",\"timestamp\":" + System.currentTimeMillis() / 1000
                + ",\"data\":{\"types\":" + toJson(c.types) + ",\"esp_ids\":" + toJson(c.espIds) + "}}";
    }

    private void onClientMessage(Client c, String text) {
        try {
            JsonNode msg = JSON.readTree(text);
            String action = msg.path("action").asText();
            JsonNode filters = msg.path("filters");
            Set<String> types = set(filters.path("types"));
            Set<String> esps = set(filters.path("esp_ids"));
            switch (action) {
                case "subscribe" -> {
                    c.types = types;
                    c.espIds = esps;
                }
                case "unsubscribe" -> {
                    c.types = Set.of();
                    c.espIds = Set.of();
                }
                case "ping" -> { }
                default -> {
                    send(c, "{\"type\":\"error\",\"timestamp\":" + System.currentTimeMillis() / 1000
                            + ",\"data\":{\"message\":\"unknown action; use subscribe, unsubscribe or ping\"}}");
                    return;
                }
            }
            send(c, "{\"type\":\"" + ("ping".equals(action) ? "pong" : "subscribed") + "\",\"timestamp\":"
                    + System.currentTimeMillis() / 1000 + ",\"data\":{\"types\":" + toJson(c.types) + ",\"esp_ids\":" + toJson(c.espIds) + "}}");
        } catch (Exception e) {
            send(c, "{\"type\":\"error\",\"timestamp\":" + System.currentTimeMillis() / 1000
                    + ",\"data\":{\"message\":\"message must be JSON: {action, filters}\"}}");
        }
    }

    /** Pushes events to every interested client; returns at once. */
    public void publish(Collection<LiveEvent> events) {
        if (events == null || clients.isEmpty()) {
            return;
        }
        for (LiveEvent e : events) {
            String text = null;
            for (Client c : clients.values()) {
                if (c.wants(e)) {
                    if (text == null) {
                        text = toJson(e.envelope());
                    }
                    send(c, text);
                }
            }
            published.increment();
        }
    }

    public void publishOne(LiveEvent e) {
        publish(List.of(e));
    }

    private void send(Client c, String text) {
        if (c.ws.isClosed()) {
            clients.remove(c.ws);
            return;
        }
        if (c.ws.writeQueueFull()) {
            dropped.increment();
            if (c.consecutiveDrops.incrementAndGet() >= maxDropsBeforeClose) {
                LOG.info("Closing slow WebSocket client {} after {} dropped events", c.ws.remoteAddress(), maxDropsBeforeClose);
                clients.remove(c.ws);
                c.ws.close((short) 1008, "too slow");
            }
            return;
        }
        c.consecutiveDrops.set(0);
        c.ws.writeTextMessage(text);
    }

    public int clientCount() {
        return clients.size();
    }

    public long published() {
        return published.sum();
    }

    public long dropped() {
        return dropped.sum();
    }

    private static Set<String> csv(String s) {
        if (s == null || s.isBlank()) {
            return Set.of();
        }
        return Set.of(s.split(",")).stream().map(String::trim).filter(x -> !x.isEmpty()).collect(java.util.stream.Collectors.toUnmodifiableSet());
    }

    private static Set<String> set(JsonNode array) {
        if (!array.isArray()) {
            return Set.of();
        }
        Set<String> out = new java.util.HashSet<>();
        array.forEach(n -> out.add(n.asText()));
        return Set.copyOf(out);
    }

    private static String toJson(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (Exception e) {
            throw new IllegalArgumentException(e);
        }
    }
}
