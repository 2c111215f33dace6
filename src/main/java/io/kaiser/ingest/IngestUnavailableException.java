package io.kaiser.ingest;

/**
 * A journal batch could not be stored (database down, or its circuit breaker open). The drainer keeps the
 * batch and retries it later; nothing is skipped.
 */
public class IngestUnavailableException extends RuntimeException {
    public IngestUnavailableException(String message) {
        super(message);
    }
}
