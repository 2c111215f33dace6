package io.kaiser.command;

import java.sql.Connection;
import java.sql.Statement;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import javax.sql.DataSource;


import io.kaiser.KaiserHeaders;
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
 * database connection: a future per waiting request, registered by {@link #expect} before the command is published
 * (so no answer can come before it), completed with the final view the answer's own UPDATE returned
 * ({@link #ended}), by a PostgreSQL LISTEN on {@code kaiser_command} (an answer processed by another server instance)
 * or by a timer. (Camel's platform-http-vertx runs the route on a Vert.x worker thread and parks it until this
 * processor calls back: {@code kaiser.http.worker-threads}.)
 */
public final class CommandWaiter extends AsyncProcessorSupport implements AsyncProcessor {
    private static final Logger LOG = LoggerFactory.getLogger(CommandWaiter.class);
    private static final Pattern WAIT = Pattern.compile("(?:^|[,;\\s])wait\\s*=\\s*(\\d{1,5})");
    /** Exchange property holding the request's {@link Waiting}, from {@link #expect} to {@link #process}. */
    static final String WAITING = "kaiserWaiting";

    private final DataSource dataSource;
    private final CommandService commands;
    private final int maxWaitSeconds;
    private final Map<String, List<CompletableFuture<Map<String, Object>>>> waiting = new ConcurrentHashMap<>();
    private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1, r -> {
        Thread t = new Thread(r, "command-wait-timer");
        t.setDaemon(true);
        return t;
    });
    private final java.util.concurrent.ExecutorService completer;
    private final java.util.Set<String> queued = ConcurrentHashMap.newKeySet();
    private volatile boolean running = true;
    private Thread listener;

    /** A request waiting for its command: completed with the command's final view, or with null when time ran out. */
    record Waiting(int seconds, CompletableFuture<Map<String, Object>> done) { }

    public CommandWaiter(DataSource dataSource, CommandService commands, int maxWaitSeconds) {
        this(dataSource, commands, maxWaitSeconds, 1);
    }

    /**
     * @param completerThreads threads that answer the waiting requests of ended commands (and read a command that
     *                         another instance ended), so that answers arriving together are not answered one after
     *                         the other
     */
    public CommandWaiter(DataSource dataSource, CommandService commands, int maxWaitSeconds, int completerThreads) {
        this.dataSource = dataSource;
        this.commands = commands;
        this.maxWaitSeconds = maxWaitSeconds;
        // most waits end with an answer: their timers leave the queue then, instead of waking this thread when due
        timer.setRemoveOnCancelPolicy(true);
        java.util.concurrent.atomic.AtomicInteger n = new java.util.concurrent.atomic.AtomicInteger();
        this.completer = Executors.newFixedThreadPool(Math.max(1, completerThreads), r -> {
            Thread t = new Thread(r, "command-wait-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Registers the request as waiting for its command when it asked to ({@code Prefer: wait=N}), before the command
     * is published: an answer, however fast, then finds it. The timer that ends the wait starts here too, so a
     * request that fails before {@link #process} leaves nothing behind.
     */
    public void expect(Exchange exchange) {
        Command command = exchange.getProperty(KaiserHeaders.COMMAND, Command.class);
        int seconds = requestedWait(exchange.getMessage().getHeader("Prefer", String.class));
        if (command == null || seconds <= 0) {
            return;
        }
        String id = command.correlationId();
        CompletableFuture<Map<String, Object>> done = new CompletableFuture<>();
        waiting.compute(id, (k, fs) -> {
            List<CompletableFuture<Map<String, Object>>> list = fs != null ? fs : new CopyOnWriteArrayList<>();
            list.add(done);
            return list;
        });
        var timeout = timer.schedule(() -> done.complete(null), seconds, TimeUnit.SECONDS);
        done.whenComplete((view, e) -> {
            timeout.cancel(false);
            waiting.computeIfPresent(id, (k, fs) -> {
                fs.remove(done);
                return fs.isEmpty() ? null : fs;
            });
        });
        exchange.setProperty(WAITING, new Waiting(seconds, done));
        if (command.replay()) {
            // an Idempotency-Key replay: its command may have ended long ago (registered first, so no end is missed)
            completeIfFinal(id);
        }
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
     * the waiter's threads, without reading the command again. Taken out of the waiting requests here, so that the
     * NOTIFY of the same change finds nobody left to read the command for.
     */
    public void ended(Map<String, Object> view) {
        String correlationId = (String) view.get("correlation_id");
        List<CompletableFuture<Map<String, Object>>> fs = correlationId == null ? null : waiting.remove(correlationId);
        if (fs == null) {
            return;
        }
        try {
            completer.execute(() -> fs.forEach(f -> f.complete(view)));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            fs.forEach(f -> f.complete(view));
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

    /** Commands that requests are waiting for on this instance. */
    int waitingCommands() {
        return waiting.size();
    }

    /** Seconds asked for with {@code Prefer: wait=N} (capped), or 0. */
    int requestedWait(String prefer) {
        if (prefer == null) {
            return 0;
        }
        Matcher m = WAIT.matcher(prefer.toLowerCase());
        return m.find() ? Math.min(Integer.parseInt(m.group(1)), maxWaitSeconds) : 0;
    }

    /** Answers the request: 202 at once, or once the command {@link #expect}ed for it ended or the wait ran out. */
    @Override
    public boolean process(Exchange exchange, AsyncCallback callback) {
        Message in = exchange.getMessage();
        Command command = exchange.getProperty(KaiserHeaders.COMMAND, Command.class);
        Waiting wait = exchange.getProperty(WAITING, Waiting.class);
        in.setHeader("Location", "/api/v1/commands/" + command.correlationId());
        if (wait == null) {
            respond(exchange, command, 202, null);
            callback.done(true);
            return true;
        }
        wait.done().whenComplete((ended, e) -> {
            try {
                // ended: the final view; null: the wait ran out (it may have ended meanwhile: look once more)
                Map<String, Object> view = ended != null ? ended : commands.view(command.correlationId());
                boolean isFinal = view != null && CommandService.isFinal((String) view.get("status"));
                respond(exchange, command, isFinal ? 200 : 504, view);
                in.setHeader("Preference-Applied", "wait=" + wait.seconds());
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
