package io.kaiser.ingest;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

import io.kaiser.KaiserHeaders;
import org.apache.camel.CamelContext;
import org.apache.camel.Exchange;
import org.apache.camel.ProducerTemplate;
import org.apache.camel.support.DefaultExchange;
import org.apache.camel.support.service.ServiceSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Feeds the journal, in order, to the YAML dispatch route in batches, and moves the checkpoint only after a
 * batch went through. A batch that fails because the database is away is retried with backoff until it
 * passes (nothing is skipped, order is kept). A batch that keeps failing while the database answers holds a
 * poison message: it is then processed one message at a time and the failing message goes to the dead letter.
 */
public final class IngestDrainer extends ServiceSupport {
    private static final Logger LOG = LoggerFactory.getLogger(IngestDrainer.class);

    private final IngestJournal journal;
    private final CamelContext camel;
    private final String batchEndpoint;
    private final String deadLetterEndpoint;
    private final int maxBatch;
    private final long maxBackoffMillis;
    private final int attemptsBeforeIsolation;
    private final BooleanSupplier databaseReachable;
    private final AtomicLong processed = new AtomicLong();
    private final AtomicLong batches = new AtomicLong();
    private final AtomicLong failedAttempts = new AtomicLong();
    private volatile long lagMillis;
    private volatile long lastBatchMillis;
    private volatile int lastBatchSize;
    private volatile String lastFailure;
    private volatile boolean stalled;
    private volatile Thread thread;
    private ProducerTemplate producer;

    public IngestDrainer(IngestJournal journal, CamelContext camel, String batchEndpoint, String deadLetterEndpoint,
                         int maxBatch, long maxBackoffMillis, int attemptsBeforeIsolation, BooleanSupplier databaseReachable) {
        this.journal = journal;
        this.camel = camel;
        this.batchEndpoint = batchEndpoint;
        this.deadLetterEndpoint = deadLetterEndpoint;
        this.maxBatch = maxBatch;
        this.maxBackoffMillis = maxBackoffMillis;
        this.attemptsBeforeIsolation = attemptsBeforeIsolation;
        this.databaseReachable = databaseReachable;
    }

    @Override
    protected void doStart() {
        producer = camel.createProducerTemplate();
        thread = new Thread(this::run, "ingest-drainer");
        thread.setDaemon(true);
        thread.start();
    }

    @Override
    protected void doStop() throws Exception {
        Thread t = thread;
        if (t != null) {
            t.interrupt();
            t.join(10_000);
        }
        if (producer != null) {
            producer.stop();
        }
    }

    private void run() {
        long backoff = 100;
        int attempts = 0;
        while (isRunAllowed() && !Thread.currentThread().isInterrupted()) {
            List<InboundMessage> batch;
            try {
                batch = journal.read(journal.checkpoint(), maxBatch, 200);
            } catch (InterruptedException e) {
                return;
            }
            if (batch.isEmpty()) {
                continue;
            }
            long started = System.currentTimeMillis();
            Exception failure = send(batch);
            if (failure == null) {
                long done = System.currentTimeMillis();
                lastBatchMillis = done - started;
                lastBatchSize = batch.size();
                lagMillis = done - batch.get(0).receivedAt();
                commit(batch);
                backoff = 100;
                attempts = 0;
                stalled = false;
                continue;
            }
            // only failures while the database answers hint at a bad message; an outage is waited out
            if (!(rootOf(failure) instanceof CircuitOpenException)) {
                attempts = databaseReachable.getAsBoolean() ? attempts + 1 : 0;
            }
            failedAttempts.incrementAndGet();
            lastFailure = failure.getClass().getSimpleName() + ": " + failure.getMessage();
            if (!stalled) {
                LOG.warn("Ingest batch of {} at {} failed, will retry: {}", batch.size(), batch.get(0).position(), lastFailure);
                LOG.debug("Ingest batch failure", failure);
            }
            stalled = true;
            if (attempts >= attemptsBeforeIsolation) {
                LOG.warn("Ingest batch at {} keeps failing while the database answers: isolating the failing message", batch.get(0).position());
                isolate(batch);
                attempts = 0;
                stalled = false;
                continue;
            }
            try {
                Thread.sleep(backoff);
            } catch (InterruptedException e) {
                return;
            }
            backoff = Math.min(backoff * 2, maxBackoffMillis);
        }
    }

    private Exception send(List<InboundMessage> batch) {
        Exchange exchange = new DefaultExchange(camel);
        exchange.getMessage().setBody(batch);
        Exchange result = producer.send(batchEndpoint, exchange);
        return result.getException();
    }

    private void isolate(List<InboundMessage> batch) {
        for (InboundMessage m : batch) {
            Exception failure = send(List.of(m));
            if (failure != null && (rootOf(failure) instanceof CircuitOpenException || !databaseReachable.getAsBoolean())) {
                // not this message's fault: stop here and let the normal loop retry
                return;
            }
            if (failure != null) {
                Exchange dl = new DefaultExchange(camel);
                dl.getMessage().setHeader(KaiserHeaders.INBOUND, m);
                dl.getMessage().setHeader("kaiserReasonCode", "processing_failed");
                dl.getMessage().setHeader("kaiserReason", failure.getClass().getSimpleName() + ": " + failure.getMessage());
                Exchange r = producer.send(deadLetterEndpoint, dl);
                if (r.getException() != null) {
                    // the database went away meanwhile: leave the checkpoint before this message and retry later
                    LOG.warn("Dead letter for {} failed: {}", m.position(), r.getException().getMessage());
                    return;
                }
            }
            journal.commit(m.next());
            processed.incrementAndGet();
        }
    }

    private static Throwable rootOf(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof IngestUnavailableException) {
                return t;
            }
        }
        return e;
    }

    private void commit(List<InboundMessage> batch) {
        journal.commit(batch.get(batch.size() - 1).next());
        processed.addAndGet(batch.size());
        batches.incrementAndGet();
    }

    public long processed() {
        return processed.get();
    }

    public long batches() {
        return batches.get();
    }

    public long failedAttempts() {
        return failedAttempts.get();
    }

    public boolean stalled() {
        return stalled;
    }

    public String lastFailure() {
        return lastFailure;
    }

    /** How long the first message of the last stored batch waited from its arrival until its batch was stored. */
    public long lagMillis() {
        return lagMillis;
    }

    public long lastBatchMillis() {
        return lastBatchMillis;
    }

    public int lastBatchSize() {
        return lastBatchSize;
    }

    public long backlogBytes() {
        return journal.backlogBytes();
    }
}
