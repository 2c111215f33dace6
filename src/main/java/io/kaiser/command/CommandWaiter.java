package io.kaiser.command;

import java.sql.Connection;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.sql.DataSource;


import org.apache.camel.AsyncCallback;
import org.apache.camel.AsyncProcessor;
import org.apache.camel.Exchange;
import org.apache.camel.Message;
import org.apache.camel.support.AsyncProcessorSupport;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Answers a command request: 202 at once, or with {@code Prefer: wait=N} 200 when the command ends (applied,
 * failed, expired) or 504 when it has not ended after N seconds. The waiter holds no thread of its own and no
 * database connection: a future per waiting request, completed by a PostgreSQL LISTEN on {@code kaiser_command} (so
 * an answer processed by another server instance completes it too) or by a timer. (Camel's platform-http-vertx runs
 * the route on a Vert.x worker thread and parks it until this processor calls back: {@code kaiser.http.worker-threads}.)
 */
public final class CommandWaiter extends AsyncProcessorSupport implements AsyncProcessor {
    private static final Logger LOG = LoggerFactory.getLogger(CommandWaiter.class);
    private static final Pattern WAIT = Pattern.compile("(?:^|[,;\\s])wait\\s*=\\s*(\\d{1,5})");

    private final DataSource dataSource;
    private final CommandService commands;
    private final int maxWaitSeconds;
    private final Map<String, List<CompletableFuture<Map<String, Object>>>> waiting = new ConcurrentHashMap<>();
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "command-wait-timer");
        t.setDaemon(true);
        return t;
    });
    private final java.util.concurrent.ExecutorService completer;
    private final java.util.Set<String> queued = ConcurrentHashMap.newKeySet();
    private volatile boolean running = true;
    private Thread listener;

    public CommandWaiter(DataSource dataSource, CommandService commands, int maxWaitSeconds) {
        this(dataSource, commands, maxWaitSeconds, 1);
    }

    /**
     * @param completerThreads threads that read a finished command and answer its waiting requests, so that answers
     *                         arriving together are not answered one after the other
     */
    public CommandWaiter(DataSource dataSource, CommandService commands, int maxWaitSeconds, int completerThreads) {
        this.dataSource = dataSource;
        this.commands = commands;
        this.maxWaitSeconds = maxWaitSeconds;
        java.util.concurrent.atomic.AtomicInteger n = new java.util.concurrent.atomic.AtomicInteger();
        this.completer = Executors.newFixedThreadPool(Math.max(1, completerThreads), r -> {
            Thread t = new Thread(r, "command-wait-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    public void startListening() {
        listener = new Thread(this::listen, "command-notify-listener");
        listener.setDaemon(true);
        listener.start();
    }

    private void listen() {
        while (running) {
            try (Connection c = dataSource.getConnection()) {
                try (Statement s = c.createStatement()) {
                    s.execute("LISTEN " + CommandService.NOTIFY_CHANNEL);
                }
                PGConnection pg = c.unwrap(PGConnection.class);
                // a notification may have been missed while (re)connecting: look at everybody waiting
                waiting.keySet().forEach(this::completeIfFinal);
                while (running) {
                    PGNotification[] ns = pg.getNotifications(500);
                    if (ns != null) {
                        for (PGNotification n : ns) {
                            wake(n.getParameter());
                        }
                    }
                }
            } catch (Exception e) {
                if (running) {
                    LOG.debug("command LISTEN connection lost: {}", e.getMessage());
                    try {
                        Thread.sleep(1000);
                    } catch (InterruptedException ie) {
                        return;
                    }
                }
            }
        }
    }

    /**
     * A command changed (this or another instance): complete its waiters once it has ended. Runs on the waiter's
     * own threads: the caller (the ingest drainer, the LISTEN connection) never carries on a REST response.
     */
    public void wake(String correlationId) {
        // the local answer and its NOTIFY usually come together: a wake while a read is queued and not started joins it
        if (correlationId != null && waiting.containsKey(correlationId) && queued.add(correlationId)) {
            try {
                completer.execute(() -> {
                    // removed before reading, so a change after this point schedules a read of its own
                    queued.remove(correlationId);
                    completeIfFinal(correlationId);
                });
            } catch (java.util.concurrent.RejectedExecutionException e) {
                queued.remove(correlationId);
            }
        }
    }

    /**
     * A command that an answer on this instance just ended, with its final view: its waiters are answered from it on
     * the waiter's threads, without reading the command again.
     */
    public void ended(Map<String, Object> view) {
        String correlationId = (String) view.get("correlation_id");
        if (correlationId == null || !waiting.containsKey(correlationId)) {
            return;
        }
        try {
            completer.execute(() -> {
                List<CompletableFuture<Map<String, Object>>> fs = waiting.remove(correlationId);
                if (fs != null) {
                    fs.forEach(f -> f.complete(view));
                }
            });
        } catch (java.util.concurrent.RejectedExecutionException e) {
            wake(correlationId);
        }
    }

    private void completeIfFinal(String correlationId) {
        try {
            Map<String, Object> view = commands.view(correlationId);
            if (view != null && CommandService.isFinal((String) view.get("status"))) {
                List<CompletableFuture<Map<String, Object>>> fs = waiting.remove(correlationId);
                if (fs != null) {
                    // the view just read is the answer: the waiting requests need not read it again
                    fs.forEach(f -> f.complete(view));
                }
            }
        } catch (Exception e) {
            LOG.debug("cannot read command {}: {}", correlationId, e.getMessage());
        }
    }

    /** Seconds asked for with {@code Prefer: wait=N} (capped), or 0. */
    int requestedWait(String prefer) {
        if (prefer == null) {
            return 0;
        }
        Matcher m = WAIT.matcher(prefer.toLowerCase());
        return m.find() ? Math.min(Integer.parseInt(m.group(1)), maxWaitSeconds) : 0;
    }

    @Override
    public boolean process(Exchange exchange, AsyncCallback callback) {
        Message in = exchange.getMessage();
        Command command = exchange.getProperty("kaiserCommand", Command.class);
        int wait = requestedWait(in.getHeader("Prefer", String.class));
        in.setHeader("Location", "/api/v1/commands/" + command.correlationId());
        if (wait <= 0) {
            respond(exchange, command, 202, null);
            callback.done(true);
            return true;
        }
        CompletableFuture<Map<String, Object>> done = new CompletableFuture<>();
        waiting.computeIfAbsent(command.correlationId(), k -> new CopyOnWriteArrayList<>()).add(done);
        completeIfFinal(command.correlationId());
        var timeout = timer.schedule(() -> done.complete(null), wait, TimeUnit.SECONDS);
        done.whenComplete((ended, e) -> {
            timeout.cancel(false);
            List<CompletableFuture<Map<String, Object>>> fs = waiting.get(command.correlationId());
            if (fs != null) {
                fs.remove(done);
                waiting.remove(command.correlationId(), List.of());
            }
            try {
                // ended: the final view; null: the wait ran out (it may have ended meanwhile: look once more)
                Map<String, Object> view = ended != null ? ended : commands.view(command.correlationId());
                boolean isFinal = view != null && CommandService.isFinal((String) view.get("status"));
                respond(exchange, command, isFinal ? 200 : 504, view);
                in.setHeader("Preference-Applied", "wait=" + wait);
            } catch (Exception ex) {
                exchange.setException(ex);
            }
            callback.done(false);
        });
        return false;
    }

    private void respond(Exchange exchange, Command command, int status, Map<String, Object> view) {
        Message in = exchange.getMessage();
        Map<String, Object> body = view;
        if (body == null) {
            try {
                body = commands.view(command.correlationId());
            } catch (Exception e) {
                body = Map.of("correlation_id", command.correlationId(), "status", "pending");
            }
        }
        if (command.replay()) {
            body = new java.util.LinkedHashMap<>(body);
            body.put("idempotent_replay", true);
        }
        if (status == 504) {
            body = new java.util.LinkedHashMap<>(body);
            body.put("detail", "the device did not finish the command in time; GET the Location for its outcome later");
        }
        in.setHeader(Exchange.HTTP_RESPONSE_CODE, status);
        in.setBody(body);
    }

    public void stop() {
        running = false;
        timer.shutdownNow();
        completer.shutdownNow();
        if (listener != null) {
            listener.interrupt();
        }
    }

}
