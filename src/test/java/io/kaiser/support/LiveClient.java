package io.kaiser.support;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

/** A WebSocket client of the live event endpoint. */
public final class LiveClient implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final BlockingQueue<Map<String, Object>> events = new LinkedBlockingQueue<>();
    private final WebSocket ws;

    public LiveClient(String url) {
        ws = HttpClient.newHttpClient().newWebSocketBuilder().connectTimeout(Duration.ofSeconds(5))
                .buildAsync(URI.create(url), new WebSocket.Listener() {
                    private final StringBuilder partial = new StringBuilder();

                    @Override
                    public CompletionStage<?> onText(WebSocket w, CharSequence data, boolean last) {
                        partial.append(data);
                        if (last) {
                            try {
                                events.add(JSON.readValue(partial.toString(), new TypeReference<Map<String, Object>>() { }));
                            } catch (Exception e) {
                                events.add(Map.of("type", "unparseable", "raw", partial.toString()));
                            }
                            partial.setLength(0);
                        }
                        w.request(1);
                        return null;
                    }
                }).join();
        Map<String, Object> hello = await(e -> "connected".equals(e.get("type")), Duration.ofSeconds(5));
        if (hello == null) {
            throw new IllegalStateException("no welcome from " + url);
        }
    }

    public void send(String text) {
        ws.sendText(text, true).join();
    }

    /** The first event matching, or null after the timeout (earlier non-matching events are discarded). */
    public Map<String, Object> await(Predicate<Map<String, Object>> match, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            while (System.nanoTime() < deadline) {
                Map<String, Object> e = events.poll(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
                if (e != null && match.test(e)) {
                    return e;
                }
            }
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
        }
        return null;
    }

    @SuppressWarnings("unchecked")
    public static Map<String, Object> data(Map<String, Object> event) {
        return (Map<String, Object>) event.get("data");
    }

    @Override
    public void close() {
        ws.sendClose(WebSocket.NORMAL_CLOSURE, "bye");
    }
}
